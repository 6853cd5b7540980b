package app

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"github.com/ecmplb/ecmplb/speaker/internal/testrouter"
)

// envSpeaker makes the test binary run the speaker (in the lab's speaker namespace)
// instead of tests; the value is the kubeconfig path.
const envSpeaker = "ECMPLB_TEST_SPEAKER_KUBECONFIG"

func TestMain(m *testing.M) {
	testrouter.MaybeRun()
	if kc := os.Getenv(envSpeaker); kc != "" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer stop()
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
		err := Run(ctx, Config{NodeName: os.Getenv("NODE_NAME"), Kubeconfig: kc, Namespace: "metallb-system",
			MetricsAddr: "127.0.0.1:7472", ServiceStatus: true, Events: true, Logger: log})
		if err != nil {
			log.Error("speaker", "err", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
