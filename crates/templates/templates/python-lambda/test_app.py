"""Unit tests of the handler: `python3 -m unittest` (no gureum or network needed)."""

import unittest

import app


class HandlerTest(unittest.TestCase):
    def test_greets_by_name(self):
        response = app.handler({"queryStringParameters": {"name": "Ada"}}, None)
        self.assertEqual(response["statusCode"], 200)
        self.assertEqual(response["headers"]["content-type"], "text/plain; charset=utf-8")
        self.assertEqual(response["body"], "Hello, Ada!\n")

    def test_greets_the_world_without_a_name(self):
        self.assertEqual(app.handler({}, None)["body"], "Hello, world!\n")
        self.assertEqual(app.greeting("  "), "Hello, world!\n")


if __name__ == "__main__":
    unittest.main()
