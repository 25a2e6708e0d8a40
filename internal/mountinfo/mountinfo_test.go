package mountinfo

import "testing"

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`/plain`:             `/plain`,
		`/a\040b`:            `/a b`,
		`/tab\011nl\012`:     "/tab\tnl\n",
		`/back\134slash`:     `/back\slash`,
		`/not\9escape`:       `/not\9escape`,
		`/short\04`:          `/short\04`,
		`/two\040\040spaces`: `/two  spaces`,
	} {
		if got := Unescape(in); got != want {
			t.Errorf("Unescape(%q) = %q, want %q", in, got, want)
		}
	}
}
