package cli

import "strings"

// Reorder moves flags that follow positional arguments to the front, so that
// `fabric route 203.0.113.5 --tor tor1` parses like `fabric route --tor tor1 203.0.113.5`
// with the flag package (which stops at the first positional argument). A flag
// without "=" takes the next argument as its value unless that looks like a flag;
// boolean flags must therefore be written before positional arguments or as -f=true.
func Reorder(args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) > 1 && a[0] == '-' {
			flags = append(flags, a)
			if !strings.Contains(a, "=") && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
				i++
				flags = append(flags, args[i])
			}
			continue
		}
		pos = append(pos, a)
	}
	return append(flags, pos...)
}
