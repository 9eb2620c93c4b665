package params

import "fmt"

// DistinctNodes checks a pair of node parameters of one step or check
// (from and to, subscriber and publisher): both given, and not the same
// node.
func DistinctNodes(a, aName, b, bName string) error {
	switch {
	case a == "" || b == "":
		return fmt.Errorf("%s and %s must both name a node", aName, bName)
	case a == b:
		return fmt.Errorf("%s and %s are both %q", aName, bName, a)
	}
	return nil
}
