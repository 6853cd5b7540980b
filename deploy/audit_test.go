package deploy

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/yaml"
)

// access is one kind of request a component made: verb on a resource
// ("services", "services/status") of an API group ("" is core), in a
// namespace ("" for cluster-scoped resources and for requests across all
// namespaces).
type access struct {
	group, resource, verb, namespace string
}

// accesses is the set of requests one user made.
type accesses map[access]bool

// covers reports whether some request used grant g. A watch also covers
// list: an informer streams its initial state in the watch when the
// apiserver supports it (the controller turns on WatchListClient) and lists
// when it does not, so the two are granted together.
func (a accesses) covers(g grant) bool {
	for x := range a {
		if x.group == g.group && x.resource == g.resource &&
			(x.verb == g.verb || g.verb == "list" && x.verb == "watch") &&
			(g.namespace == "" || x.namespace == g.namespace) {
			return true
		}
	}
	return false
}

// list returns "verb group/resource [namespace]" for each request kind, sorted.
func (a accesses) list() []string {
	var out []string
	for x := range a {
		s := x.verb + " " + x.group + "/" + x.resource
		if x.namespace != "" {
			s += " in " + x.namespace
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// auditEvent holds the fields of an audit.k8s.io/v1 Event the test reads.
type auditEvent struct {
	Verb string `json:"verb"`
	User struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
		Namespace   string `json:"namespace"`
		APIGroup    string `json:"apiGroup"`
	} `json:"objectRef"`
	RequestURI  string            `json:"requestURI"`
	Annotations map[string]string `json:"annotations"`
}

// readAudit reads a JSON audit log: the resource requests of each user, and
// the requests RBAC refused.
func readAudit(path string) (map[string]accesses, []string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("audit log: %w", err)
	}
	defer f.Close()
	used := map[string]accesses{}
	var denied []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e auditEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, nil, fmt.Errorf("audit log %s: %w", path, err)
		}
		if e.Annotations["authorization.k8s.io/decision"] == "forbid" {
			denied = append(denied, fmt.Sprintf("%s: %s %s", e.User.Username, e.Verb, e.RequestURI))
		}
		if e.ObjectRef == nil {
			continue // discovery and other non-resource URLs
		}
		res := e.ObjectRef.Resource
		if e.ObjectRef.Subresource != "" {
			res += "/" + e.ObjectRef.Subresource
		}
		if used[e.User.Username] == nil {
			used[e.User.Username] = accesses{}
		}
		used[e.User.Username][access{group: e.ObjectRef.APIGroup, resource: res, verb: e.Verb, namespace: e.ObjectRef.Namespace}] = true
	}
	return used, denied, sc.Err()
}

// grant is one verb on one resource that a role gives a user; namespace is
// set for a Role.
type grant struct {
	role, group, resource, verb, namespace string
}

func (g grant) resourceString() string {
	s := g.resource
	if g.group != "" {
		s += "." + g.group
	}
	if g.namespace != "" {
		s += " in " + g.namespace
	}
	return s
}

// grantsOf reads the Roles, ClusterRoles and their bindings to ServiceAccounts
// from a manifest and returns what each ServiceAccount (as its username) is
// granted, one verb on one resource at a time.
func grantsOf(path string) (map[string][]grant, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	roles := map[string][]rbacv1.PolicyRule{} // "Kind/namespace/name"
	type binding struct {
		roleKey, namespace string
		subjects           []rbacv1.Subject
	}
	var bindings []binding
	dec := yaml.NewYAMLOrJSONDecoder(f, 4096)
	for {
		var obj map[string]any
		if err := dec.Decode(&obj); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		conv := func(into any) error {
			return runtime.DefaultUnstructuredConverter.FromUnstructured(obj, into)
		}
		switch obj["kind"] {
		case "ClusterRole":
			var r rbacv1.ClusterRole
			if err := conv(&r); err != nil {
				return nil, err
			}
			roles["ClusterRole//"+r.Name] = r.Rules
		case "Role":
			var r rbacv1.Role
			if err := conv(&r); err != nil {
				return nil, err
			}
			roles["Role/"+r.Namespace+"/"+r.Name] = r.Rules
		case "ClusterRoleBinding":
			var b rbacv1.ClusterRoleBinding
			if err := conv(&b); err != nil {
				return nil, err
			}
			bindings = append(bindings, binding{roleKey: "ClusterRole//" + b.RoleRef.Name, subjects: b.Subjects})
		case "RoleBinding":
			var b rbacv1.RoleBinding
			if err := conv(&b); err != nil {
				return nil, err
			}
			key := "Role/" + b.Namespace + "/" + b.RoleRef.Name
			if b.RoleRef.Kind == "ClusterRole" {
				key = "ClusterRole//" + b.RoleRef.Name
			}
			bindings = append(bindings, binding{roleKey: key, namespace: b.Namespace, subjects: b.Subjects})
		}
	}
	out := map[string][]grant{}
	for _, b := range bindings {
		rules, ok := roles[b.roleKey]
		if !ok {
			return nil, fmt.Errorf("%s: a binding refers to %s, which the manifest does not define", path, b.roleKey)
		}
		name := strings.TrimSuffix(strings.ReplaceAll(b.roleKey, "//", " "), "/")
		for _, s := range b.subjects {
			if s.Kind != rbacv1.ServiceAccountKind {
				continue
			}
			user := "system:serviceaccount:" + s.Namespace + ":" + s.Name
			for _, r := range rules {
				for _, g := range r.APIGroups {
					for _, res := range r.Resources {
						for _, v := range r.Verbs {
							out[user] = append(out[user], grant{role: name, group: g, resource: res, verb: v, namespace: b.namespace})
						}
					}
				}
			}
		}
	}
	return out, nil
}
