package scenariofile

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
)

// ExampleMarker precedes the complete example in scenarios/README.md.
const ExampleMarker = "<!-- scenario-example -->"

// ReadmeExample returns the YAML block that follows ExampleMarker in a
// Markdown file, and a name for it ("README.md (example)"), so the example
// in the documentation is parsed and run like any scenario file.
func ReadmeExample(path string) (string, []byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", nil, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	var out bytes.Buffer
	state := 0 // 0 before the marker, 1 before the fence, 2 inside
	for sc.Scan() {
		line := sc.Text()
		switch {
		case state == 0 && strings.TrimSpace(line) == ExampleMarker:
			state = 1
		case state == 1 && strings.HasPrefix(line, "```"):
			state = 2
		case state == 2 && strings.HasPrefix(line, "```"):
			return path + " (example)", out.Bytes(), nil
		case state == 2:
			out.WriteString(line + "\n")
		}
	}
	return "", nil, fmt.Errorf("%s: no YAML block after %s", path, ExampleMarker)
}
