package announce

import "github.com/ecmplb/ecmplb/internal/validation"

// Community is one BGP community; the parser is the one the webhook and the
// controller use (internal/validation).
type Community = validation.Community

// ParseCommunity parses "a:b", a well-known name such as "no-export", or
// "large:a:b:c" (validation.ParseCommunity).
func ParseCommunity(s string) (Community, error) { return validation.ParseCommunity(s) }
