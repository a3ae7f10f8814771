package repo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// Figure is one number of an audit record, kept as the exact JSON number it
// was written as: counts, bytes, sequence numbers and nanosecond times are
// integers and stay exact over the whole int64/uint64 range (a float64
// rounds above 2^53: a timestamp_ns of ...748925 came back as ...749000),
// durations and rates are floats. Records written before Figure (version 1
// too: the JSON is the same, numbers) read as they were written.
type Figure struct{ lit string }

// Figures are an audit record's named numbers.
type Figures map[string]Figure

type integer interface {
	~int | ~int8 | ~int16 | ~int32 | ~int64 | ~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64
}

// Int is an integer figure (counts, bytes, sequence numbers, nanoseconds), exact.
func Int[T integer](v T) Figure {
	if v < 0 {
		return Figure{strconv.FormatInt(int64(v), 10)}
	}
	return Figure{strconv.FormatUint(uint64(v), 10)}
}

// Float is a floating-point figure (seconds, rates); a whole number below
// 2^53 is stored as an integer, NaN and infinities as 0 (JSON has none).
func Float(v float64) Figure {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return Figure{"0"}
	case v == math.Trunc(v) && math.Abs(v) < 1<<53:
		return Int(int64(v))
	}
	return Figure{strconv.FormatFloat(v, 'g', -1, 64)}
}

// FiguresOf converts float figures (a check report's, a verdict's) for an
// audit record: whole numbers become integers.
func FiguresOf(m map[string]float64) Figures {
	if m == nil {
		return nil
	}
	f := make(Figures, len(m))
	for k, v := range m {
		f[k] = Float(v)
	}
	return f
}

// IsInt reports whether f was written as an integer.
func (f Figure) IsInt() bool {
	_, err := strconv.ParseInt(f.lit, 10, 64)
	if err != nil {
		_, err = strconv.ParseUint(f.lit, 10, 64)
	}
	return err == nil
}

// Int64 is f as an int64: exact for an integer, truncated for a float
// (0 for none).
func (f Figure) Int64() int64 {
	if v, err := strconv.ParseInt(f.lit, 10, 64); err == nil {
		return v
	}
	return int64(f.Float64())
}

// Uint64 is f as a uint64: exact for a non-negative integer.
func (f Figure) Uint64() uint64 {
	if v, err := strconv.ParseUint(f.lit, 10, 64); err == nil {
		return v
	}
	if v := f.Float64(); v > 0 {
		return uint64(v)
	}
	return 0
}

// Float64 is f as a float64 (rounded above 2^53).
func (f Figure) Float64() float64 {
	v, _ := strconv.ParseFloat(f.lit, 64)
	return v
}

// String is f's JSON number ("0" for none).
func (f Figure) String() string {
	if f.lit == "" {
		return "0"
	}
	return f.lit
}

// MarshalJSON writes f's number as it is.
func (f Figure) MarshalJSON() ([]byte, error) { return []byte(f.String()), nil }

// UnmarshalJSON keeps the number's literal; anything but a JSON number is
// a format error.
func (f *Figure) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	var n json.Number
	if len(b) == 0 || b[0] == '"' || json.Unmarshal(b, &n) != nil {
		return fmt.Errorf("audit figure %.40q: %w: not a number", b, ErrFormat)
	}
	f.lit = n.String()
	return nil
}
