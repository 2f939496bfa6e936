package inventory

import (
	"context"
	"strconv"
)

func contextWithCancel() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}

func itoa(i int) string { return strconv.Itoa(i) }
