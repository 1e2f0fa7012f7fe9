// Unit tests of the function's logic: `node --test` (no gureum, no build, no npm install).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { greeting, nameFrom } from './greeting.js';

test('greets by name', () => {
  assert.equal(greeting(nameFrom('/?name=Ada')), 'Hello, Ada!\n');
  assert.equal(greeting(nameFrom('http://127.0.0.1:8080/hi?name=Ada')), 'Hello, Ada!\n');
});

test('greets the world without a name', () => {
  assert.equal(greeting(nameFrom('/')), 'Hello, world!\n');
  assert.equal(greeting(nameFrom('/?name=')), 'Hello, world!\n');
  assert.equal(greeting(nameFrom(undefined)), 'Hello, world!\n');
  assert.equal(greeting('  '), 'Hello, world!\n');
});

test('decodes the query', () => {
  assert.equal(nameFrom('/hello?x=1&name=Ada%20Lovelace'), 'Ada Lovelace');
  assert.equal(nameFrom('/?name=Ada+Lovelace'), 'Ada Lovelace');
});
