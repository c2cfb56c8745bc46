"""Tests of fuel-router's decisions, on this machine: python3 -m unittest"""

import unittest

from logic import sinks


class FuelRouterTest(unittest.TestCase):
    def test_renewables_go_green_the_rest_to_grid_and_alerts_also_to_alerts(self):
        self.assertEqual(sinks("wind", []), ["green"])
        self.assertEqual(sinks("gas", [("size", "large")]), ["grid"])
        self.assertEqual(sinks(None, []), ["grid"])
        self.assertEqual(sinks("solar", [("alert", "over-capacity")]), ["green", "alerts"])


if __name__ == "__main__":
    unittest.main()
