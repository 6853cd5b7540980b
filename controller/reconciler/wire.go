package reconciler

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"google.golang.org/protobuf/encoding/protowire"
)

// This file reads Services from the API server's protobuf encoding straight
// into Svcs. Decoding a whole corev1.Service (managed fields, every spec
// field, a map per label set and annotation set) and then compacting it
// was most of a restart's CPU at 11,000 Services; DecodeSvc reads the
// fields Compact keeps and steps over the rest. It makes exactly what
// Compact makes of the same Service (TestDecodeSvcIsCompact).

// Field numbers of the messages read below, from k8s.io/api's and
// k8s.io/apimachinery's generated.proto.
const (
	fListMeta      = 1 // ServiceList
	fListItems     = 2
	fListRV        = 2 // ListMeta.resourceVersion
	fListContinue  = 3 // ListMeta.continue
	fListRemaining = 4 // ListMeta.remainingItemCount
	fMetadata      = 1 // Service.metadata
	fSpec          = 2 // Service.spec
	fStatus        = 3 // Service.status
	fName          = 1 // ObjectMeta
	fNamespace     = 3
	fUID           = 5
	fRV            = 6
	fGeneration    = 7
	fCreation      = 8
	fLabels        = 11
	fAnnotations   = 12
	fManagedFields = 17
	fMFManager     = 1 // ManagedFieldsEntry
	fMFTime        = 4
	fMFSubresource = 8
	fSeconds       = 1 // Time
	fPorts         = 1 // ServiceSpec
	fSelector      = 2
	fType          = 4
	fLBIP          = 8
	fPolicy        = 11
	fFamilyPolicy  = 17
	fFamilies      = 19
	fClass         = 21
	fPortProtocol  = 2 // ServicePort
	fPortPort      = 3
	fLoadBalancer  = 1 // ServiceStatus
	fIngress       = 1 // LoadBalancerStatus
	fIngressIP     = 1 // LoadBalancerIngress
	fMapKey        = 1 // map entries
	fMapValue      = 2
)

// errWire is a malformed message.
var errWire = errors.New("malformed protobuf")

// eachField calls f with every field of the message b: its number, wire
// type, and value (the bytes of a length-delimited field, the number of a
// varint or fixed one). It stops at f's first error. It reads the wire
// format as the generated (gogo) decoders of the Kubernetes types do, so
// that it accepts what they accept: varints of up to ten bytes, groups
// stepped over by depth, no end group outside one.
func eachField(b []byte, f func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	for len(b) > 0 {
		tag, n := varint(b)
		if n < 0 {
			return fmt.Errorf("%w: tag", errWire)
		}
		num, typ := protowire.Number(int32(tag>>3)), protowire.Type(tag&7)
		if num <= 0 {
			return fmt.Errorf("%w: field number %d", errWire, num)
		}
		if typ == protowire.EndGroupType {
			return fmt.Errorf("%w: end of a group that did not start", errWire)
		}
		var v []byte
		var x uint64
		var m int
		switch typ {
		case protowire.BytesType:
			var l uint64
			if l, m = varint(b[n:]); m >= 0 {
				if end := n + m + int(l); int(l) < 0 || end < 0 || end > len(b) {
					m = -1
				} else {
					v, m = b[n+m:end], m+int(l)
				}
			}
		case protowire.VarintType:
			x, m = varint(b[n:])
		case protowire.Fixed32Type, protowire.Fixed64Type:
			size := 4
			if typ == protowire.Fixed64Type {
				size = 8
			}
			if m = size; n+m > len(b) {
				m = -1
			} else if size == 4 {
				x = uint64(binary.LittleEndian.Uint32(b[n:]))
			} else {
				x = binary.LittleEndian.Uint64(b[n:])
			}
		default:
			m = skipGroup(b[n:], typ)
		}
		if m < 0 {
			return fmt.Errorf("%w: field %d", errWire, num)
		}
		b = b[n+m:]
		if err := f(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}

// varint reads a varint as the generated decoders do (at most ten bytes;
// bits past the 64th are dropped). It returns the bytes read, -1 if b ends
// first or the varint is longer.
func varint(b []byte) (uint64, int) {
	var x uint64
	for i, shift := 0, uint(0); shift < 64; i, shift = i+1, shift+7 {
		if i >= len(b) {
			return 0, -1
		}
		x |= uint64(b[i]&0x7f) << shift
		if b[i] < 0x80 {
			return x, i + 1
		}
	}
	return 0, -1
}

// skipGroup returns the length of a field value of wire type typ (a start
// group, or an invalid type) as the generated decoders skip it: a group
// ends at the end group that brings the depth back to zero, whatever its
// field number. -1 if it does not end, or on an invalid wire type.
func skipGroup(b []byte, typ protowire.Type) int {
	if typ != protowire.StartGroupType {
		return -1
	}
	depth, i := 1, 0
	for i < len(b) {
		tag, n := varint(b[i:])
		if n < 0 {
			return -1
		}
		i += n
		switch protowire.Type(tag & 7) {
		case protowire.VarintType:
			if _, n = varint(b[i:]); n < 0 {
				return -1
			}
			i += n
		case protowire.Fixed64Type:
			i += 8
		case protowire.BytesType:
			l, n := varint(b[i:])
			if n < 0 || int(l) < 0 || i+n+int(l) < 0 {
				return -1
			}
			i += n + int(l)
		case protowire.StartGroupType:
			depth++
		case protowire.EndGroupType:
			depth--
		case protowire.Fixed32Type:
			i += 4
		default:
			return -1
		}
		if depth == 0 {
			if i > len(b) {
				return -1
			}
			return i
		}
	}
	return -1
}

// wireErr is a field of the wrong wire type.
func wireErr(msg string, num protowire.Number) error {
	return fmt.Errorf("%w: %s field %d has the wrong wire type", errWire, msg, num)
}

// wireTime reads a metav1.Time as its protobuf Unmarshal does: seconds
// only, in local time; no bytes is the zero time.
func wireTime(b []byte) (metav1.Time, error) {
	if len(b) == 0 {
		return metav1.Time{}, nil
	}
	var sec int64
	err := eachField(b, func(num protowire.Number, typ protowire.Type, _ []byte, x uint64) error {
		if num == fSeconds {
			if typ != protowire.VarintType {
				return wireErr("Time", num)
			}
			sec = int64(x)
		}
		return nil
	})
	return metav1.Time{Time: time.Unix(sec, 0).Local()}, err
}

// wireMapEntry reads one entry of a map<string, string> as the generated
// decoder does: key (1) and value (2) are read as length-delimited whatever
// their wire type says; other fields are stepped over.
func wireMapEntry(b []byte) (k, v string, err error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "", "", fmt.Errorf("%w: map entry: %v", errWire, protowire.ParseError(n))
		}
		b = b[n:]
		if num == fMapKey || num == fMapValue {
			var s []byte
			if s, n = protowire.ConsumeBytes(b); n >= 0 {
				if num == fMapKey {
					k = string(s)
				} else {
					v = string(s)
				}
			}
		} else {
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return "", "", fmt.Errorf("%w: map entry field %d: %v", errWire, num, protowire.ParseError(n))
		}
		b = b[n:]
	}
	return k, v, nil
}

// wireSvc gathers what Compact reads of a Service.
type wireSvc struct {
	meta, spec, status [][]byte // the message's occurrences, in order
}

// DecodeSvc makes the Svc of a Service from its protobuf encoding (the
// corev1.Service message, without the runtime.Unknown envelope): the Svc
// Compact makes of the Service that encoding decodes to.
func DecodeSvc(b []byte) (*Svc, error) {
	var w wireSvc
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num != fMetadata && num != fSpec && num != fStatus {
			return nil
		}
		if typ != protowire.BytesType {
			return wireErr("Service", num)
		}
		switch num {
		case fMetadata:
			w.meta = append(w.meta, v)
		case fSpec:
			w.spec = append(w.spec, v)
		default:
			w.status = append(w.status, v)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := &Svc{}
	// The spec first: whether the Service is a LoadBalancer decides what
	// else is kept.
	var sp wireSpec
	for _, s := range w.spec {
		if err := sp.read(s); err != nil {
			return nil, fmt.Errorf("spec: %w", err)
		}
	}
	lb := corev1.ServiceType(sp.typ) == corev1.ServiceTypeLoadBalancer
	var md wireMeta
	for _, m := range w.meta {
		if err := md.read(m, lb); err != nil {
			return nil, fmt.Errorf("metadata: %w", err)
		}
	}
	for _, s := range w.status {
		if err := readStatus(s, out); err != nil {
			return nil, fmt.Errorf("status: %w", err)
		}
	}
	out.Name, out.Namespace, out.UID, out.ResourceVersion = md.name, intern(md.namespace), types.UID(md.uid), md.rv
	out.Generation, out.CreationTimestamp = md.generation, md.creation
	out.Type = corev1.ServiceType(intern(sp.typ))
	out.Class = sp.class
	if md.changed != nil && md.changed.After(md.creation.Time) {
		out.Changed = md.changed.UnixNano()
	}
	if !lb {
		return out, nil
	}
	out.Labels = md.labels
	out.Annotations = md.annotations
	slices.SortFunc(out.Annotations, func(a, b Annotation) int { return strings.Compare(a.Name, b.Name) })
	out.Policy = corev1.ServiceExternalTrafficPolicy(intern(sp.policy))
	out.LoadBalancerIP = sp.lbIP
	out.IPFamilies = families(sp.families)
	out.IPFamilyPolicy = familyPolicy(sp.familyPolicy)
	if out.sharingKey() != "" {
		out.Selector = sp.selector
		out.Ports = sp.ports
		if out.Ports == nil {
			out.Ports = []corev1.ServicePort{} // as Compact makes it
		}
	}
	return out, nil
}

// wireMeta is what DecodeSvc reads of ObjectMeta.
type wireMeta struct {
	name, namespace, uid, rv string
	generation               int64
	creation                 metav1.Time
	labels                   map[string]string
	annotations              []Annotation
	// changed is LastChange's newest managed-fields time (nil: none).
	changed *time.Time
}

// read reads one ObjectMeta message; labels and annotations only when
// kept is set.
func (m *wireMeta) read(b []byte, kept bool) error {
	return eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		switch num {
		case fName, fNamespace, fUID, fRV, fCreation, fLabels, fAnnotations, fManagedFields:
			if typ != protowire.BytesType {
				return wireErr("ObjectMeta", num)
			}
		case fGeneration:
			if typ != protowire.VarintType {
				return wireErr("ObjectMeta", num)
			}
		}
		switch num {
		case fName:
			m.name = string(v)
		case fNamespace:
			m.namespace = string(v)
		case fUID:
			m.uid = string(v)
		case fRV:
			m.rv = string(v)
		case fGeneration:
			m.generation = int64(x)
		case fCreation:
			t, err := wireTime(v)
			if err != nil {
				return err
			}
			m.creation = t
		case fLabels:
			k, val, err := wireMapEntry(v)
			if err != nil || !kept {
				return err
			}
			if m.labels == nil {
				m.labels = map[string]string{}
			}
			m.labels[k] = val
		case fAnnotations:
			if !kept {
				// Still a well-formed entry, as the whole decode checks.
				_, _, err := wireMapEntry(v)
				return err
			}
			k, val, err := wireMapEntry(v)
			if err != nil || !keptAnnotation(k) {
				return err
			}
			m.annotate(intern(k), intern(val))
		case fManagedFields:
			return m.readManagedFields(v)
		}
		return nil
	})
}

// annotate sets a kept annotation (a repeated key: the last value, as a
// map decodes).
func (m *wireMeta) annotate(k, v string) {
	for i := range m.annotations {
		if m.annotations[i].Name == k {
			m.annotations[i].Value = v
			return
		}
	}
	m.annotations = append(m.annotations, Annotation{Name: k, Value: v})
}

// readManagedFields reads one ManagedFieldsEntry into LastChange's newest
// time: entries for a subresource, by this controller or without a time do
// not count. Its fieldsV1, the bulk of it, is stepped over.
func (m *wireMeta) readManagedFields(b []byte) error {
	var manager, subresource string
	var at *metav1.Time
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num != fMFManager && num != fMFTime && num != fMFSubresource {
			return nil
		}
		if typ != protowire.BytesType {
			return wireErr("ManagedFieldsEntry", num)
		}
		switch num {
		case fMFManager:
			manager = string(v)
		case fMFSubresource:
			subresource = string(v)
		default:
			t, err := wireTime(v)
			if err != nil {
				return err
			}
			at = &t
		}
		return nil
	})
	if err != nil || subresource != "" || manager == FieldManager || at == nil {
		return err
	}
	if m.changed == nil || at.After(*m.changed) {
		m.changed = &at.Time
	}
	return nil
}

// wireSpec is what DecodeSvc reads of ServiceSpec.
type wireSpec struct {
	typ, policy, lbIP string
	class             *string
	familyPolicy      *corev1.IPFamilyPolicy
	families          []corev1.IPFamily
	selector          map[string]string
	ports             []corev1.ServicePort
}

// read reads one ServiceSpec message.
func (s *wireSpec) read(b []byte) error {
	return eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		switch num {
		case fPorts, fSelector, fType, fLBIP, fPolicy, fFamilyPolicy, fFamilies, fClass:
			if typ != protowire.BytesType {
				return wireErr("ServiceSpec", num)
			}
		default:
			return nil
		}
		switch num {
		case fPorts:
			p, err := wirePort(v)
			if err != nil {
				return err
			}
			s.ports = append(s.ports, p)
		case fSelector:
			k, val, err := wireMapEntry(v)
			if err != nil {
				return err
			}
			if s.selector == nil {
				s.selector = map[string]string{}
			}
			s.selector[k] = val
		case fType:
			s.typ = string(v)
		case fLBIP:
			s.lbIP = string(v)
		case fPolicy:
			s.policy = string(v)
		case fFamilyPolicy:
			p := corev1.IPFamilyPolicy(v)
			s.familyPolicy = &p
		case fFamilies:
			s.families = append(s.families, corev1.IPFamily(v))
		case fClass:
			c := string(v)
			s.class = &c
		}
		return nil
	})
}

// wirePort reads the port and protocol of a ServicePort.
func wirePort(b []byte) (corev1.ServicePort, error) {
	var p corev1.ServicePort
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		switch num {
		case fPortProtocol:
			if typ != protowire.BytesType {
				return wireErr("ServicePort", num)
			}
			p.Protocol = corev1.Protocol(intern(string(v)))
		case fPortPort:
			if typ != protowire.VarintType {
				return wireErr("ServicePort", num)
			}
			p.Port = int32(x)
		}
		return nil
	})
	return p, err
}

// readStatus reads one ServiceStatus message's ingress IPs into out.
func readStatus(b []byte, out *Svc) error {
	return eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num != fLoadBalancer {
			return nil
		}
		if typ != protowire.BytesType {
			return wireErr("ServiceStatus", num)
		}
		return eachField(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
			if num != fIngress {
				return nil
			}
			if typ != protowire.BytesType {
				return wireErr("LoadBalancerStatus", num)
			}
			ip := ""
			err := eachField(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
				if num != fIngressIP {
					return nil
				}
				if typ != protowire.BytesType {
					return wireErr("LoadBalancerIngress", num)
				}
				ip = string(v)
				return nil
			})
			out.Ingress = append(out.Ingress, ip)
			return err
		})
	})
}

// DecodeBookmark makes the Svc of a watch bookmark's Service: only its
// resourceVersion, and the annotation that marks the end of a watch's
// initial events (the informer looks for it through GetAnnotations).
func DecodeBookmark(b []byte) (*Svc, error) {
	out := &Svc{}
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num != fMetadata {
			return nil
		}
		if typ != protowire.BytesType {
			return wireErr("Service", num)
		}
		return eachField(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
			if num != fRV && num != fAnnotations {
				return nil
			}
			if typ != protowire.BytesType {
				return wireErr("ObjectMeta", num)
			}
			if num == fRV {
				out.ResourceVersion = string(v)
				return nil
			}
			k, val, err := wireMapEntry(v)
			if err == nil && k == metav1.InitialEventsAnnotationKey {
				out.Annotations = []Annotation{{Name: k, Value: val}}
			}
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// SvcList is a list of Svcs with the list's metadata: what a List of
// Services decodes to for the Service informer. Items are pointers: the
// informer keeps each one, and a pointer into a shared array would keep the
// whole list alive while one item on it is.
type SvcList struct {
	metav1.ListMeta
	Items []*Svc
}

// GetObjectKind implements runtime.Object.
func (l *SvcList) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// DeepCopyObject implements runtime.Object.
func (l *SvcList) DeepCopyObject() runtime.Object {
	c := &SvcList{ListMeta: *l.ListMeta.DeepCopy(), Items: make([]*Svc, len(l.Items))}
	for i := range l.Items {
		c.Items[i] = l.Items[i].DeepCopyObject().(*Svc)
	}
	return c
}

// decodeListMeta reads the ListMeta fields an SvcList keeps.
func decodeListMeta(b []byte, out *metav1.ListMeta) error {
	return eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		switch num {
		case fListRV, fListContinue:
			if typ != protowire.BytesType {
				return wireErr("ListMeta", num)
			}
			if num == fListRV {
				out.ResourceVersion = string(v)
			} else {
				out.Continue = string(v)
			}
		case fListRemaining:
			if typ != protowire.VarintType {
				return wireErr("ListMeta", num)
			}
			n := int64(x)
			out.RemainingItemCount = &n
		}
		return nil
	})
}

// maxWireItem bounds one length-delimited field ReadSvcList reads whole (a
// Service; the API server's own limit on an object is far lower).
const maxWireItem = 64 << 20

// ReadSvcList decodes the protobuf encoding of a ServiceList, size bytes
// long, from r one item at a time, handing each Svc to each as soon as it
// is decoded, and returns the list's metadata. The List is never held whole:
// one Service's bytes at a time (a List of 11,000 Services is megabytes),
// and the decoding runs while the rest is still arriving.
func ReadSvcList(r *bufio.Reader, size uint64, each func(*Svc) error) (metav1.ListMeta, error) {
	var meta metav1.ListMeta
	var buf []byte
	items := 0
	err := ReadFields(r, size, func(num protowire.Number, typ protowire.Type, n uint64) error {
		if num != fListMeta && num != fListItems {
			return discard(r, typ, n)
		}
		if typ != protowire.BytesType {
			return wireErr("ServiceList", num)
		}
		if n > maxWireItem {
			return fmt.Errorf("%w: a ServiceList field of %d bytes", errWire, n)
		}
		if uint64(cap(buf)) < n {
			buf = make([]byte, n)
		}
		v := buf[:n]
		if _, err := io.ReadFull(r, v); err != nil {
			return fmt.Errorf("%w: %w", errWire, unexpectedEOF(err))
		}
		if num == fListMeta {
			return decodeListMeta(v, &meta)
		}
		s, err := DecodeSvc(v)
		if err != nil {
			return fmt.Errorf("item %d: %w", items, err)
		}
		items++
		return each(s)
	})
	return meta, err
}

// ToEOF is the size for ReadFields of a message that ends with the stream.
const ToEOF = ^uint64(0)

// ReadFields reads the fields of a message size bytes long (or up to the
// end of the stream: ToEOF) from r. For a
// length-delimited field f gets its number and length n and must consume
// exactly n bytes of r (read them, or discard them); any other field's
// value is read before f sees its number and type (n = 0).
func ReadFields(r *bufio.Reader, size uint64, f func(num protowire.Number, typ protowire.Type, n uint64) error) error {
	cr := &countingReader{r: r}
	for cr.n < size {
		at := cr.n
		tag, err := binary.ReadUvarint(cr)
		if err == io.EOF && size == ToEOF && cr.n == at {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: tag: %w", errWire, unexpectedEOF(err))
		}
		num, typ := protowire.Number(int32(tag>>3)), protowire.Type(tag&7)
		if num <= 0 {
			return fmt.Errorf("%w: field number %d", errWire, num)
		}
		var n uint64
		switch typ {
		case protowire.VarintType:
			_, err = binary.ReadUvarint(cr)
		case protowire.Fixed32Type, protowire.Fixed64Type:
			k := 4
			if typ == protowire.Fixed64Type {
				k = 8
			}
			var got int
			got, err = r.Discard(k)
			cr.n += uint64(got)
		case protowire.BytesType:
			n, err = binary.ReadUvarint(cr)
		default:
			return fmt.Errorf("%w: field %d of wire type %d", errWire, num, typ)
		}
		if err != nil {
			return fmt.Errorf("%w: field %d: %w", errWire, num, unexpectedEOF(err))
		}
		if cr.n > size || n > size-cr.n {
			return fmt.Errorf("%w: field %d overruns the message", errWire, num)
		}
		if err := f(num, typ, n); err != nil {
			return err
		}
		cr.n += n
	}
	return nil
}

// discard steps over a field's value of n bytes (length-delimited; other
// values ReadFields has read already).
func discard(r *bufio.Reader, typ protowire.Type, n uint64) error {
	if typ != protowire.BytesType || n == 0 {
		return nil
	}
	if _, err := r.Discard(int(n)); err != nil {
		return fmt.Errorf("%w: %w", errWire, unexpectedEOF(err))
	}
	return nil
}

// countingReader counts the bytes read through ReadByte.
type countingReader struct {
	r *bufio.Reader
	n uint64
}

func (c *countingReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.n++
	}
	return b, err
}

// unexpectedEOF turns an end of the stream inside a message into
// io.ErrUnexpectedEOF.
func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
