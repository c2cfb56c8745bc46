// Tests of output-alert-enricher's decisions, on this machine: go test
package export_plant_monitor_plugin_enrich

import "testing"

func TestOverCapacityWinsOverOutOfRange(t *testing.T) {
	lo, hi := 10.0, 100.0
	bounds := Bounds{Min: &lo, Max: &hi}
	for _, c := range []struct {
		output, capacity float64
		want             string
	}{
		{150, 120, "over-capacity"},
		{110, 120, "out-of-range"},
		{5, 120, "out-of-range"},
		{10, 120, ""},
		{100, 100, ""},
	} {
		if got := bounds.Alert(c.output, c.capacity); got != c.want {
			t.Errorf("Alert(%v, %v) = %q, want %q", c.output, c.capacity, got, c.want)
		}
	}
	if got := (Bounds{}).Alert(-1, 10); got != "" {
		t.Errorf("Alert without bounds = %q", got)
	}
}

func TestBoundsAreFiniteNumbersAsRustReadsThem(t *testing.T) {
	for raw, want := range map[string]float64{"50": 50, " 50 ": 50, "-3.5": -3.5, "1e3": 1000} {
		if got, err := ParseFinite("k", raw); err != nil || got != want {
			t.Errorf("ParseFinite(%q) = %v, %v; want %v", raw, got, err, want)
		}
	}
	for raw, want := range map[string]string{
		"":      `k: "" is not a number (cannot parse float from empty string)`,
		"abc":   `k: "abc" is not a number (invalid float literal)`,
		"0x10":  `k: "0x10" is not a number (invalid float literal)`,
		"1_000": `k: "1_000" is not a number (invalid float literal)`,
		"inf":   `k: "inf" is not a finite number`,
		"NaN":   `k: "NaN" is not a finite number`,
		"1e400": `k: "1e400" is not a finite number`,
	} {
		if _, err := ParseFinite("k", raw); err == nil || err.Error() != want {
			t.Errorf("ParseFinite(%q) = %v; want the error %s", raw, err, want)
		}
	}
}

func TestMessagesQuoteAsRustDebugDoes(t *testing.T) {
	if got, want := Quoted("a\"b\\c\td\u00e9\u0301\u200b"), `"a\"b\\c\tdé\u{301}\u{200b}"`; got != want {
		t.Errorf("Quoted = %s, want %s", got, want)
	}
}
