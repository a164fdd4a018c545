//go:build !getty_nogostwheel

package getty_test

import (
	"testing"
	"time"

	gxtime "github.com/dubbogo/gost/time"
	"github.com/stretchr/testify/require"

	_ "github.com/getty-go/getty"
)

// Importing getty starts gost's default timer wheel, as importing upstream
// does: dubbo-go and seata-go call gxtime.After without starting it.
func TestImportStartsGostTimerWheel(t *testing.T) {
	require.NotNil(t, gxtime.GetDefaultTimerWheel(), "gost's default timer wheel is not running after importing getty")
	select {
	case <-gxtime.After(20 * time.Millisecond):
	case <-time.After(5 * time.Second):
		t.Fatal("gxtime.After did not fire")
	}
}
