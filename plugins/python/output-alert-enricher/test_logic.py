"""Tests of output-alert-enricher's decisions, on this machine: python3 -m unittest"""

import unittest

from logic import alert, parse_finite, set_label


class OutputAlertEnricherTest(unittest.TestCase):
    def test_over_capacity_wins_over_out_of_range_and_bounds_are_inclusive(self):
        self.assertEqual(alert(101.0, 100.0, 0.0, 50.0), "over-capacity")
        self.assertEqual(alert(60.0, 100.0, 0.0, 50.0), "out-of-range")
        self.assertEqual(alert(-1.0, 100.0, 0.0, None), "out-of-range")
        self.assertIsNone(alert(50.0, 100.0, 0.0, 50.0))
        self.assertIsNone(alert(0.0, 100.0, 0.0, 50.0))
        self.assertIsNone(alert(80.0, 100.0, None, None))

    def test_a_label_is_replaced_in_place_or_appended(self):
        labels = [("size", "large"), ("alert", "old")]
        set_label(labels, "alert", "over-capacity")
        self.assertEqual(labels, [("size", "large"), ("alert", "over-capacity")])
        set_label(labels, "zone", "north")
        self.assertEqual(labels, [("size", "large"), ("alert", "over-capacity"), ("zone", "north")])

    def test_bounds_are_finite_numbers(self):
        self.assertEqual(parse_finite("min_output_mw", " 0 "), 0.0)
        with self.assertRaises(ValueError) as caught:
            parse_finite("max_output_mw", "inf")
        self.assertEqual(str(caught.exception), 'max_output_mw: "inf" is not a finite number')


if __name__ == "__main__":
    unittest.main()
