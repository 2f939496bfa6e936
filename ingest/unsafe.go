package ingest

import "unsafe"

// unsafeString views b as a string without copying. The string is only valid
// while b is: the batch copies what it keeps into its own buffer.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
