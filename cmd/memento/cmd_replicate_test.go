package main

import "testing"

func TestParseByteRate(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  bool
	}{
		{"", 0, false}, {"0", 0, false}, {"10MiB", 10 << 20, false}, {"10M", 10 << 20, false},
		{"10MB", 10e6, false}, {"500KiB/s", 500 << 10, false}, {"1.5GiB", 3 << 29, false},
		{"1048576", 1 << 20, false}, {"2 mib", 2 << 20, false}, {"8kb", 8000, false},
		{"ten", 0, true}, {"10XB", 0, true}, {"-1M", 0, true}, {"0.1", 0, true}, {"1e9G", 0, true},
	}
	for _, tt := range tests {
		got, err := parseByteRate(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("parseByteRate(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}
