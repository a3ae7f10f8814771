package chunk

import (
	"errors"
	"testing"
)

func TestParamsFor(t *testing.T) {
	tests := []struct {
		path string
		want Params
	}{
		{"wal/wal-00000000000000a1.log", ParamsWAL},
		{"spaces/s1/wal/wal-00000000000000a1.log", ParamsWAL},
		{"cold/seg-12.col", ParamsCold},
		{"spaces/s1/cold/seg-0.col", ParamsCold},
		{"warm/warm_tier.dat", ParamsWarm},
		{"spaces/s1/warm/warm_tier.dat", ParamsWarm},
		{`spaces\s1\warm\warm_tier.dat`, ParamsWarm},
		{"warm/other.dat", ParamsDefault},
		{"wal/notes.txt", ParamsDefault},
		{"hot/state.bin", ParamsDefault},
		{"checkpoint.json", ParamsDefault},
		{"metadata.json", ParamsDefault},
		{"", ParamsDefault},
	}
	for _, tt := range tests {
		if got := ParamsFor(tt.path); got != tt.want {
			t.Errorf("ParamsFor(%q) = %+v, want %+v", tt.path, got, tt.want)
		}
	}
	for _, p := range []Params{ParamsWAL, ParamsCold, ParamsWarm, ParamsDefault} {
		if err := p.Validate(); err != nil {
			t.Errorf("built-in %v", err)
		}
	}
}

func TestParamsValidate(t *testing.T) {
	for _, p := range []Params{
		{},
		{Min: 32, Max: 1024, AverageBits: 8},
		{Min: 4096, Max: 1024, AverageBits: 12},
		{Min: 4096, Max: MaxChunkSize + 1, AverageBits: 20},
		{Min: 4096, Max: 8192, AverageBits: 0},
		{Min: 4096, Max: 8192, AverageBits: 31},
	} {
		if err := p.Validate(); !errors.Is(err, ErrInvalidParams) {
			t.Errorf("Validate(%+v) = %v, want ErrInvalidParams", p, err)
		}
	}
}
