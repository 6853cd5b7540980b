package app

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	clientfeatures "k8s.io/client-go/features"
	clientfeaturestesting "k8s.io/client-go/features/testing"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/ecmplb/ecmplb/controller/reconciler"
	"github.com/ecmplb/ecmplb/internal/slimmeta"
)

// BenchmarkServiceInformerSync: from an informer's start to its sync (and
// its handler's last add) on 11,000 Svcs served at once (no apiserver),
// with the initial state as a List (what serviceListWatch serves) and as
// initial events (what a watch with WatchListClient would).
func BenchmarkServiceInformerSync(b *testing.B) {
	const n = 11000
	svcs := make([]*reconciler.Svc, n)
	for i := range svcs {
		svcs[i] = &reconciler.Svc{SvcMeta: reconciler.SvcMeta{Meta: slimmeta.Meta{Namespace: "bench", Name: fmt.Sprintf("svc-%d", i),
			ResourceVersion: fmt.Sprint(100 + i)}}, Type: "LoadBalancer", Ingress: []string{"10.0.0.1"}}
	}
	for _, watchList := range []bool{false, true} {
		b.Run(map[bool]string{false: "list", true: "initial-events"}[watchList], func(b *testing.B) {
			clientfeaturestesting.SetFeatureDuringTest(b, clientfeatures.WatchListClient, watchList)
			lw := &toolscache.ListWatch{
				ListWithContextFunc: func(context.Context, metav1.ListOptions) (runtime.Object, error) {
					l := &reconciler.SvcList{Items: append([]*reconciler.Svc(nil), svcs...)}
					l.ResourceVersion = "20000"
					return l, nil
				},
				WatchFuncWithContext: func(_ context.Context, opts metav1.ListOptions) (watch.Interface, error) {
					if opts.SendInitialEvents == nil || !*opts.SendInitialEvents {
						return watch.NewFake(), nil
					}
					w := watch.NewFakeWithChanSize(n+1, false)
					for _, s := range svcs {
						w.Add(s)
					}
					w.Action(watch.Bookmark, &reconciler.Svc{
						SvcMeta:     reconciler.SvcMeta{Meta: slimmeta.Meta{ResourceVersion: "20000"}},
						Annotations: []reconciler.Annotation{{Name: metav1.InitialEventsAnnotationKey, Value: "true"}}})
					return w, nil
				},
			}
			for b.Loop() {
				inf := toolscache.NewSharedIndexInformer(lw, &reconciler.Svc{}, 0, toolscache.Indexers{})
				added := make(chan struct{}, n)
				if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{AddFunc: func(any) { added <- struct{}{} }}); err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				go inf.RunWithContext(ctx)
				for !inf.HasSynced() {
					time.Sleep(100 * time.Microsecond)
				}
				for range n {
					<-added
				}
				cancel()
			}
		})
	}
}
