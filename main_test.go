package getty_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/getty-go/getty/internal/leakcheck"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, leakcheck.Options()...)
}
