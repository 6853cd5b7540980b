package gobgplog_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	bgplog "github.com/osrg/gobgp/v3/pkg/log"

	"github.com/ecmplb/ecmplb/internal/gobgplog"
)

func TestLevels(t *testing.T) {
	for _, tc := range []struct {
		name     string
		handler  slog.Level
		opts     []gobgplog.Option
		want     string // one line per GoBGP level error, warn, info, debug: the slog level or "-"
		getLevel bgplog.LogLevel
	}{
		{"router: GoBGP info at info", slog.LevelDebug, []gobgplog.Option{gobgplog.WithLevel(bgplog.InfoLevel)},
			"ERROR WARN INFO -", bgplog.InfoLevel},
		{"announcer: warnings only", slog.LevelDebug, []gobgplog.Option{gobgplog.WithLevel(bgplog.WarnLevel)},
			"ERROR WARN - -", bgplog.WarnLevel},
		{"handler at warn caps the level", slog.LevelWarn, []gobgplog.Option{gobgplog.WithLevel(bgplog.InfoLevel)},
			"ERROR WARN - -", bgplog.WarnLevel},
		{"speaker at info: chatter dropped", slog.LevelInfo, []gobgplog.Option{gobgplog.WithDemotedChatter()},
			"ERROR WARN - -", bgplog.WarnLevel},
		{"speaker at debug: info as debug", slog.LevelDebug, []gobgplog.Option{gobgplog.WithDemotedChatter()},
			"ERROR WARN DEBUG -", bgplog.InfoLevel},
		{"speaker at debug-4: everything", slog.LevelDebug - 4, []gobgplog.Option{gobgplog.WithDemotedChatter()},
			"ERROR WARN DEBUG DEBUG-4", bgplog.DebugLevel},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := gobgplog.New(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tc.handler})), tc.opts...)
			var got []string
			for _, f := range []func(string, bgplog.Fields){l.Error, l.Warn, l.Info, l.Debug} {
				buf.Reset()
				f("m", nil)
				lvl := "-"
				if _, rest, ok := strings.Cut(buf.String(), "level="); ok {
					lvl, _, _ = strings.Cut(rest, " ")
				}
				got = append(got, lvl)
			}
			if g := strings.Join(got, " "); g != tc.want {
				t.Errorf("levels %q, want %q", g, tc.want)
			}
			if g := l.GetLevel(); g != tc.getLevel {
				t.Errorf("GetLevel = %v, want %v", g, tc.getLevel)
			}
		})
	}
}

func TestLineFormat(t *testing.T) {
	var buf bytes.Buffer
	l := gobgplog.New(slog.New(slog.NewTextHandler(&buf, nil)), gobgplog.WithPrefix("gobgp: "))
	l.Warn("peer down", bgplog.Fields{"Topic": "Peer", "Key": "10.0.0.1"})
	if want := `level=WARN msg="gobgp: peer down" Key=10.0.0.1 Topic=Peer`; !strings.Contains(buf.String(), want) {
		t.Errorf("got %q, want it to contain %q", buf.String(), want)
	}
}

func TestPanicPanics(t *testing.T) {
	l := gobgplog.New(slog.New(slog.DiscardHandler))
	defer func() {
		if recover() == nil {
			t.Error("Panic returned")
		}
	}()
	l.Panic("code logic bug", nil)
}

func TestSetLevel(t *testing.T) {
	var buf bytes.Buffer
	l := gobgplog.New(slog.New(slog.NewTextHandler(&buf, nil)), gobgplog.WithLevel(bgplog.InfoLevel))
	l.SetLevel(bgplog.WarnLevel)
	l.Info("chatter", nil)
	if buf.Len() != 0 || l.GetLevel() != bgplog.WarnLevel {
		t.Errorf("after SetLevel(Warn): GetLevel %v, logged %q", l.GetLevel(), buf.String())
	}
}
