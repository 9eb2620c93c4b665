package steps

import (
	"testing"

	"github.com/switchover/switchover/internal/sandbox/sandboxtest"
)

// TestMain brings down the sandbox the package's PostgreSQL tests share.
func TestMain(m *testing.M) { sandboxtest.Main(m) }
