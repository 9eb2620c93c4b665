package pg

import "strings"

// ParseControlData reads the output of pg_controldata into a map from each
// field's name, as printed and without the colon ("Latest checkpoint
// location", "Database cluster state"), to its value, trimmed. It is how a
// stopped node's shutdown checkpoint LSN is learnt when the server cannot be
// asked. Lines without a colon are skipped. The field names are English only
// when pg_controldata ran with LC_ALL=C: run it so.
func ParseControlData(text string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		key, value, ok := strings.Cut(line, ":")
		key = strings.TrimSpace(key)
		if !ok || key == "" {
			continue
		}
		out[key] = strings.TrimSpace(value)
	}
	return out
}
