package store

import (
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
)

func runtimeCPUs() int { return runtime.GOMAXPROCS(0) }

// discardResponse captures the reply of VictoriaMetrics' internal HTTP
// handlers, which are the only exported way to reach some storage operations.
type discardResponse struct {
	header http.Header
	status int
	body   []byte
}

func (r *discardResponse) Header() http.Header { return r.header }
func (r *discardResponse) WriteHeader(status int) {
	r.status = status
}
func (r *discardResponse) Write(p []byte) (int, error) {
	r.body = append(r.body, p...)
	return len(p), nil
}

func snapshotName(body []byte) (string, error) {
	var reply struct {
		Status   string `json:"status"`
		Snapshot string `json:"snapshot"`
		Error    string `json:"error"`
	}
	if err := json.Unmarshal(body, &reply); err != nil {
		return "", fmt.Errorf("unexpected snapshot reply %q: %w", body, err)
	}
	if reply.Status != "ok" || reply.Snapshot == "" {
		return "", fmt.Errorf("snapshot failed: %s", body)
	}
	return reply.Snapshot, nil
}
