package conversion

import (
	"maps"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ecmplb/ecmplb/api/v1beta1"
	"github.com/ecmplb/ecmplb/api/v1beta2"
)

// BGPPeerToV1beta2 returns in as a v1beta2 BGPPeer. The result shares no
// memory with in; nil and empty lists and maps stay as they are, so the
// conversion back gives in again.
func BGPPeerToV1beta2(in *v1beta1.BGPPeer) *v1beta2.BGPPeer {
	in = in.DeepCopy()
	return &v1beta2.BGPPeer{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1beta2.GroupVersion.String(), Kind: "BGPPeer"},
		ObjectMeta: in.ObjectMeta,
		Spec:       specToV1beta2(in.Spec),
		Status:     v1beta2.BGPPeerStatus{},
	}
}

// BGPPeerToV1beta1 returns in as a v1beta1 BGPPeer, the inverse of
// BGPPeerToV1beta2.
func BGPPeerToV1beta1(in *v1beta2.BGPPeer) *v1beta1.BGPPeer {
	in = in.DeepCopy()
	return &v1beta1.BGPPeer{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1beta1.GroupVersion.String(), Kind: "BGPPeer"},
		ObjectMeta: in.ObjectMeta,
		Spec:       specToV1beta1(in.Spec),
		Status:     v1beta1.BGPPeerStatus{},
	}
}

// specToV1beta2 converts a spec that the caller owns (it is not copied).
// Every field is named: TestSpecFieldsMatch fails when a version gains a field
// and this function does not.
func specToV1beta2(s v1beta1.BGPPeerSpec) v1beta2.BGPPeerSpec {
	return v1beta2.BGPPeerSpec{
		MyASN:                  s.MyASN,
		ASN:                    s.ASN,
		DynamicASN:             v1beta2.DynamicASNMode(s.DynamicASN),
		Address:                s.Address,
		Interface:              s.Interface,
		SrcAddress:             s.SrcAddress,
		Port:                   s.Port,
		HoldTime:               s.HoldTime,
		KeepaliveTime:          s.KeepaliveTime,
		ConnectTime:            s.ConnectTime,
		RouterID:               s.RouterID,
		NodeSelectors:          selectorsToV1beta2(s.NodeSelectors),
		Password:               s.Password,
		PasswordSecret:         s.PasswordSecret,
		BFDProfile:             s.BFDProfile,
		EnableGracefulRestart:  s.EnableGracefulRestart,
		EBGPMultiHop:           s.EBGPMultiHop,
		VRFName:                s.VRFName,
		DisableMP:              s.DisableMP,
		DualStackAddressFamily: s.DualStackAddressFamily,
	}
}

// specToV1beta1 converts a spec that the caller owns (it is not copied).
func specToV1beta1(s v1beta2.BGPPeerSpec) v1beta1.BGPPeerSpec {
	return v1beta1.BGPPeerSpec{
		MyASN:                  s.MyASN,
		ASN:                    s.ASN,
		DynamicASN:             v1beta1.DynamicASNMode(s.DynamicASN),
		Address:                s.Address,
		Interface:              s.Interface,
		SrcAddress:             s.SrcAddress,
		Port:                   s.Port,
		HoldTime:               s.HoldTime,
		KeepaliveTime:          s.KeepaliveTime,
		ConnectTime:            s.ConnectTime,
		RouterID:               s.RouterID,
		NodeSelectors:          selectorsToV1beta1(s.NodeSelectors),
		Password:               s.Password,
		PasswordSecret:         s.PasswordSecret,
		BFDProfile:             s.BFDProfile,
		EnableGracefulRestart:  s.EnableGracefulRestart,
		EBGPMultiHop:           s.EBGPMultiHop,
		VRFName:                s.VRFName,
		DisableMP:              s.DisableMP,
		DualStackAddressFamily: s.DualStackAddressFamily,
	}
}

func selectorsToV1beta2(in []v1beta1.NodeSelector) []metav1.LabelSelector {
	if in == nil {
		return nil
	}
	out := make([]metav1.LabelSelector, len(in))
	for i, s := range in {
		out[i].MatchLabels = maps.Clone(s.MatchLabels)
		if s.MatchExpressions != nil {
			out[i].MatchExpressions = make([]metav1.LabelSelectorRequirement, len(s.MatchExpressions))
			for j, e := range s.MatchExpressions {
				out[i].MatchExpressions[j] = metav1.LabelSelectorRequirement{
					Key: e.Key, Operator: metav1.LabelSelectorOperator(e.Operator), Values: slices.Clone(e.Values)}
			}
		}
	}
	return out
}

func selectorsToV1beta1(in []metav1.LabelSelector) []v1beta1.NodeSelector {
	if in == nil {
		return nil
	}
	out := make([]v1beta1.NodeSelector, len(in))
	for i, s := range in {
		out[i].MatchLabels = maps.Clone(s.MatchLabels)
		if s.MatchExpressions != nil {
			out[i].MatchExpressions = make([]v1beta1.MatchExpression, len(s.MatchExpressions))
			for j, e := range s.MatchExpressions {
				out[i].MatchExpressions[j] = v1beta1.MatchExpression{
					Key: e.Key, Operator: string(e.Operator), Values: slices.Clone(e.Values)}
			}
		}
	}
	return out
}
