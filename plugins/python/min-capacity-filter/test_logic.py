"""Tests of min-capacity-filter's decisions, on this machine: python3 -m unittest"""

import unittest

from logic import keeps, parse_finite


class MinCapacityFilterTest(unittest.TestCase):
    def test_plants_below_the_minimum_are_dropped_and_an_event_without_images_is_kept(self):
        self.assertTrue(keeps(50.0, 50.0))
        self.assertFalse(keeps(49.9, 50.0))
        self.assertTrue(keeps(None, 50.0))

    def test_numbers_are_read_as_rust_reads_them(self):
        for raw, value in [("50", 50.0), (" 50 ", 50.0), ("-3.5", -3.5), ("1e3", 1000.0), (".5", 0.5)]:
            self.assertEqual(parse_finite("k", raw), value)
        for raw, message in [
            ("", 'k: "" is not a number (cannot parse float from empty string)'),
            ("0x10", 'k: "0x10" is not a number (invalid float literal)'),
            ("1,5", 'k: "1,5" is not a number (invalid float literal)'),
            ("1_000", 'k: "1_000" is not a number (invalid float literal)'),
            ("٥٠", 'k: "٥٠" is not a number (invalid float literal)'),
            ('a"\t', 'k: "a\\"\\t" is not a number (invalid float literal)'),
            ("inf", 'k: "inf" is not a finite number'),
            ("NaN", 'k: "NaN" is not a finite number'),
            ("1e400", 'k: "1e400" is not a finite number'),
        ]:
            with self.subTest(raw=raw), self.assertRaises(ValueError) as caught:
                parse_finite("k", raw)
            self.assertEqual(str(caught.exception), message)


if __name__ == "__main__":
    unittest.main()
