package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/ecmplb/ecmplb/controller/reconciler"
)

// The Service informer lists and watches Services in the API server's
// protobuf encoding and decodes each one straight into a reconciler.Svc
// (reconciler.DecodeSvc) instead of a whole corev1.Service, which the
// cache's transform then compacted: at a restart with 11,000 Services the
// generic decoding of the watch stream and its garbage were a third of the
// controller's CPU before the first new IP.

const (
	protobufType = "application/vnd.kubernetes.protobuf"
	// maxFrame bounds one watch event (the API server's own limit on an
	// object is far lower).
	maxFrame = 64 << 20
)

// protobufMagic starts every object the API server encodes as protobuf,
// before its runtime.Unknown envelope.
var protobufMagic = []byte("k8s\x00")

// serviceListWatch lists and watches all Services through rc, returning
// reconciler.SvcList and reconciler.Svc objects. The informer's initial
// state is a List: the reflector's first List (resourceVersion "0", any
// state, in pages of 500) is served as one consistent List, logged (how
// many Services, how long). A watch that asks for initial events (client-go's
// WatchListClient) is refused, and the reflector lists instead: its
// per-event intake and second store made the informer's sync on 11,000
// Services 57-66 ms (events handed over one at a time, as this controller
// served them) where a List takes 29-35 ms (BenchmarkServiceInformerSync),
// all of it after the List.
func serviceListWatch(rc *rest.Config, log *slog.Logger) (*toolscache.ListWatch, error) {
	cs, err := typedcorev1.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("services client: %w", err)
	}
	c := cs.RESTClient()
	return &toolscache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			initial := opts.ResourceVersion == "0"
			if initial {
				opts = metav1.ListOptions{LabelSelector: opts.LabelSelector, FieldSelector: opts.FieldSelector}
			}
			start := time.Now()
			l, err := listServices(ctx, c, opts)
			if err == nil && initial {
				log.Info("Services listed", "services", len(l.Items), "took", time.Since(start).String())
			}
			return l, err
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			if opts.SendInitialEvents != nil && *opts.SendInitialEvents {
				return nil, errInitialEvents
			}
			return watchServices(ctx, c, opts)
		},
	}, nil
}

// errInitialEvents refuses a watch with initial events (see serviceListWatch).
var errInitialEvents = fmt.Errorf("the Service informer lists its initial state: no watch with initial events")

// listServices lists Services (one page, as opts says).
func listServices(ctx context.Context, c rest.Interface, opts metav1.ListOptions) (*reconciler.SvcList, error) {
	l := &reconciler.SvcList{}
	meta, err := readServices(ctx, c, opts, func(s *reconciler.Svc) error {
		l.Items = append(l.Items, s)
		return nil
	})
	if err != nil {
		return nil, err
	}
	l.ListMeta = meta
	return l, nil
}

// readServices lists Services (one page, as opts says), reading the
// response as it arrives: each Service is decoded and handed to each before
// the next one is read, so the response is never held whole.
func readServices(ctx context.Context, c rest.Interface, opts metav1.ListOptions, each func(*reconciler.Svc) error) (metav1.ListMeta, error) {
	var meta metav1.ListMeta
	body, err := c.Get().Resource("services").VersionedParams(&opts, scheme.ParameterCodec).
		SetHeader("Accept", protobufType).Stream(ctx)
	if err != nil {
		return meta, err
	}
	defer func() { _ = body.Close() }()
	r := bufio.NewReaderSize(body, 64<<10)
	magic := make([]byte, len(protobufMagic))
	if _, err := io.ReadFull(r, magic); err != nil || !bytes.Equal(magic, protobufMagic) {
		return meta, fmt.Errorf("list of Services: not a protobuf object")
	}
	// The envelope (a runtime.Unknown): typeMeta = 1 (kind = 2), then the
	// list itself, raw = 2.
	kind, listed := "", false
	err = reconciler.ReadFields(r, reconciler.ToEOF, func(num protowire.Number, typ protowire.Type, n uint64) error {
		switch {
		case typ != protowire.BytesType:
			return fmt.Errorf("envelope field %d of wire type %d", num, typ)
		case num == 1:
			if n > 4096 {
				return fmt.Errorf("envelope type of %d bytes", n)
			}
			b := make([]byte, n)
			if _, err := io.ReadFull(r, b); err != nil {
				return err
			}
			kind, err = typeKind(b)
			return err
		case num == 2:
			if kind != "ServiceList" {
				return fmt.Errorf("the API server sent a %q", kind)
			}
			listed = true
			meta, err = reconciler.ReadSvcList(r, n, each)
			return err
		}
		_, err := r.Discard(int(n))
		return err
	})
	if err == nil && !listed {
		err = fmt.Errorf("the API server sent no list")
	}
	if err != nil {
		return meta, fmt.Errorf("list of Services: %w", err)
	}
	return meta, nil
}

// watchServices opens a watch of Services.
func watchServices(ctx context.Context, c rest.Interface, opts metav1.ListOptions) (watch.Interface, error) {
	opts.Watch = true
	body, err := c.Get().Resource("services").VersionedParams(&opts, scheme.ParameterCodec).
		SetHeader("Accept", protobufType+";stream=watch").Stream(ctx)
	if err != nil {
		return nil, err
	}
	return watch.NewStreamWatcher(&svcEvents{body: body, r: bufio.NewReaderSize(body, 64<<10)},
		errors.NewClientErrorReporter(http.StatusInternalServerError, "GET", "ServiceWatchDecoding")), nil
}

// unwrap returns the kind and message of an object the API server encoded
// as protobuf: the magic number, then a runtime.Unknown (typeMeta = 1 with
// kind = 2, raw = 2).
func unwrap(b []byte) (kind string, raw []byte, err error) {
	if !bytes.HasPrefix(b, protobufMagic) {
		return "", nil, fmt.Errorf("not a protobuf object")
	}
	err = bytesFields(b[len(protobufMagic):], func(num protowire.Number, v []byte) error {
		switch num {
		case 1:
			var err error
			kind, err = typeKind(v)
			return err
		case 2:
			raw = v
		}
		return nil
	})
	if err != nil {
		return "", nil, fmt.Errorf("envelope: %w", err)
	}
	return kind, raw, nil
}

// typeKind is the kind (field 2) of an envelope's typeMeta.
func typeKind(typeMeta []byte) (kind string, err error) {
	err = bytesFields(typeMeta, func(num protowire.Number, v []byte) error {
		if num == 2 {
			kind = string(v)
		}
		return nil
	})
	return kind, err
}

// bytesFields calls f with each field of a message whose fields are all
// length-delimited (strings, bytes, messages), as the envelope's and a
// watch event's are.
func bytesFields(b []byte, f func(num protowire.Number, v []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || typ != protowire.BytesType {
			return fmt.Errorf("malformed message")
		}
		v, m := protowire.ConsumeBytes(b[n:])
		if m < 0 {
			return fmt.Errorf("malformed message")
		}
		if err := f(num, v); err != nil {
			return err
		}
		b = b[n+m:]
	}
	return nil
}

// svcEvents decodes a protobuf watch stream of Services: frames of a
// 4-byte big-endian length and a metav1.WatchEvent (type = 1, object = 2,
// a runtime.RawExtension whose raw = 1 is the wrapped object).
type svcEvents struct {
	body io.Closer
	r    *bufio.Reader
	buf  []byte
}

// Decode implements watch.Decoder.
func (d *svcEvents) Decode() (watch.EventType, runtime.Object, error) {
	var size [4]byte
	if _, err := io.ReadFull(d.r, size[:]); err != nil {
		return "", nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n > maxFrame {
		return "", nil, fmt.Errorf("watch event of %d bytes", n)
	}
	if cap(d.buf) < int(n) {
		d.buf = make([]byte, n)
	}
	frame := d.buf[:n]
	if _, err := io.ReadFull(d.r, frame); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return "", nil, err
	}
	var typ string
	var object []byte
	err := bytesFields(frame, func(num protowire.Number, v []byte) error {
		switch num {
		case 1:
			typ = string(v)
		case 2: // a RawExtension: raw = 1
			return bytesFields(v, func(num protowire.Number, v []byte) error {
				if num == 1 {
					object = v
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return "", nil, fmt.Errorf("watch event: %w", err)
	}
	kind, raw, err := unwrap(object)
	if err != nil {
		return "", nil, fmt.Errorf("watch event %s: %w", typ, err)
	}
	et := watch.EventType(typ)
	var obj runtime.Object
	switch {
	case et == watch.Error:
		// A Status, decoded as client-go decodes one.
		obj, _, err = scheme.Codecs.UniversalDeserializer().Decode(object, nil, nil)
	case kind != "Service":
		err = fmt.Errorf("watch event %s carries a %q, not a Service", typ, kind)
	case et == watch.Bookmark:
		obj, err = reconciler.DecodeBookmark(raw)
	case et == watch.Added, et == watch.Modified, et == watch.Deleted:
		obj, err = reconciler.DecodeSvc(raw)
	default:
		err = fmt.Errorf("watch event of type %q", typ)
	}
	if err != nil {
		return "", nil, err
	}
	return et, obj, nil
}

// Close implements watch.Decoder.
func (d *svcEvents) Close() { _ = d.body.Close() }
