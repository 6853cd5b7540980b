package bfd

import (
	"strings"
	"testing"
	"time"
)

func TestProfileValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Profile)
		want []string // substrings of the error; none: valid
	}{
		{"defaults", func(*Profile) {}, nil},
		{"minimums", func(p *Profile) { *p = Profile{10, 10, 2, 10, false, false, 1} }, nil},
		{"maximums", func(p *Profile) { *p = Profile{60000, 60000, 255, 60000, true, true, 254} }, nil},
		{"receive too small", func(p *Profile) { p.ReceiveInterval = 5 }, []string{"receiveInterval: 5 is outside 10-60000"}},
		{"transmit too big", func(p *Profile) { p.TransmitInterval = 60001 }, []string{"transmitInterval: 60001 is outside 10-60000"}},
		{"multiplier 1", func(p *Profile) { p.DetectMultiplier = 1 }, []string{"detectMultiplier: 1 is outside 2-255"}},
		{"multiplier 256", func(p *Profile) { p.DetectMultiplier = 256 }, []string{"detectMultiplier: 256"}},
		{"echo 0", func(p *Profile) { p.EchoInterval = 0 }, []string{"echoInterval: 0"}},
		{"ttl 255", func(p *Profile) { p.MinimumTTL = 255 }, []string{"minimumTtl: 255 is outside 1-254"}},
		{"two fields", func(p *Profile) { p.ReceiveInterval, p.MinimumTTL = 0, 0 }, []string{"receiveInterval", "minimumTtl"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := DefaultProfile()
			tt.mod(&p)
			err := p.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted %+v", p)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestProfileDefaults(t *testing.T) {
	want := Profile{ReceiveInterval: 300, TransmitInterval: 300, DetectMultiplier: 3, EchoInterval: 50, MinimumTTL: 254}
	if got := DefaultProfile(); got != want {
		t.Fatalf("DefaultProfile = %+v", got)
	}
	if got := (Profile{PassiveMode: true, TransmitInterval: 50}).WithDefaults(); got != (Profile{300, 50, 3, 50, false, true, 254}) {
		t.Fatalf("WithDefaults = %+v", got)
	}
	got := Profile{TransmitInterval: 50, ReceiveInterval: 70, DetectMultiplier: 4}.params()
	if got != (sessionParams{DesiredMinTx: 50000, RequiredMinRx: 70000, DetectMult: 4}) {
		t.Fatalf("params = %+v", got)
	}
	if usec(got.DesiredMinTx) != 50*time.Millisecond {
		t.Fatal("unit mismatch")
	}
}
