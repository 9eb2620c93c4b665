package oneline

import "testing"

func TestOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{name: "empty", in: "", want: ""},
		{name: "blanks only", in: " \n\t\r\n", want: ""},
		{name: "one line", in: "  connection   refused ", want: "connection refused"},
		{name: "lines", in: "first  line\n\tsecond line\n\n", want: "first line; second line"},
		{name: "crlf", in: "FATAL: no\r\nDETAIL: why\r\n", want: "FATAL: no; DETAIL: why"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Of(tt.in); got != tt.want {
				t.Errorf("Of(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
