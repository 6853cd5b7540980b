package validation

import (
	"fmt"
	"strings"
	"unicode"
)

// maxInterfaceName is the longest network interface name Linux accepts
// (IFNAMSIZ 16, less the terminating NUL).
const maxInterfaceName = 15

// InterfaceName checks a network interface name as Linux does
// (dev_valid_name): 1-15 bytes, not "." or "..", and no "/", ":" or white
// space. An L2Advertisement naming an interface Linux cannot have would
// never announce anywhere.
func InterfaceName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("must not be empty")
	case len(name) > maxInterfaceName:
		return fmt.Errorf("%q is longer than %d bytes", name, maxInterfaceName)
	case name == "." || name == "..":
		return fmt.Errorf("%q is not an interface name", name)
	case strings.ContainsAny(name, "/:"):
		return fmt.Errorf("%q holds %q or %q", name, "/", ":")
	case strings.ContainsFunc(name, unicode.IsSpace):
		return fmt.Errorf("%q holds white space", name)
	}
	return nil
}
