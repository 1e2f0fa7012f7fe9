"""Unit tests of the function's logic: `python3 -m unittest` (no gureum, no build needed)."""

import unittest

from greeting import greeting, name_from


class GreetingTest(unittest.TestCase):
    def test_greets_by_name(self):
        self.assertEqual(greeting(name_from("/?name=Ada")), "Hello, Ada!\n")

    def test_greets_the_world_without_a_name(self):
        self.assertEqual(greeting(name_from("/")), "Hello, world!\n")
        self.assertEqual(greeting(name_from("/?name=")), "Hello, world!\n")
        self.assertEqual(greeting(name_from(None)), "Hello, world!\n")
        self.assertEqual(greeting("  "), "Hello, world!\n")

    def test_decodes_the_query(self):
        self.assertEqual(name_from("/hello?x=1&name=Ada%20Lovelace"), "Ada Lovelace")
        self.assertEqual(name_from("/?name=Ada+Lovelace"), "Ada Lovelace")


if __name__ == "__main__":
    unittest.main()
