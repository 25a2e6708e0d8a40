package attest

import (
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/cairn-build/cairn/pkg/stack"
)

// SeedDistro is the purl distro of the seed's packages: the seed is Debian
// bookworm (docs/seed.md).
const SeedDistro = "debian-12"

// debPURL is a Debian binary package's purl, in the purl specification's
// canonical form: the epoch's colon as is (its own example is
// pkg:deb/debian/attr@1:2.4.47-2), qualifiers sorted.
func debPURL(name, version, arch string) string {
	return "pkg:deb/debian/" + purlEscape(name, "") + "@" + purlEscape(version, ":") +
		"?arch=" + purlEscape(arch, "") + "&distro=" + SeedDistro
}

// upstreamPURL is a source's identity as its upstream releases it, never a
// distribution's package of it: pkg:github where the git remote is on
// GitHub, else pkg:generic, with download_url (the release archive, or
// upstream's where the pinned archive is a repack) and vcs_url (the git
// remote at the pinned commit) where known.
func upstreamPURL(s stack.Source) string {
	var q []string // sorted by key: download_url < vcs_url
	switch {
	case len(s.Archives) > 0 && strings.HasPrefix(s.Archives[0], "http"):
		q = append(q, "download_url="+purlEscape(s.Archives[0], ":/"))
	case s.Upstream != "":
		q = append(q, "download_url="+purlEscape(s.Upstream, ":/"))
	}
	if s.Git != "" && !strings.HasPrefix(s.Git, "file:") {
		vcs := "git+" + s.Git
		if s.Pin.GitCommit != "" {
			vcs += "@" + s.Pin.GitCommit
		}
		if owner, repo, ok := githubRepo(s.Git); ok {
			p := "pkg:github/" + purlEscape(owner, "") + "/" + purlEscape(repo, "") + "@" + purlEscape(s.Version, ":")
			if len(q) > 0 {
				p += "?" + strings.Join(q, "&")
			}
			return p
		}
		q = append(q, "vcs_url="+purlEscape(vcs, ":/"))
	}
	p := "pkg:generic/" + purlEscape(s.Name, "") + "@" + purlEscape(s.Version, ":")
	if len(q) > 0 {
		p += "?" + strings.Join(q, "&")
	}
	return p
}

// githubRepo splits a GitHub remote into owner and repository.
func githubRepo(remote string) (owner, repo string, ok bool) {
	u, err := url.Parse(remote)
	if err != nil || u.Host != "github.com" {
		return "", "", false
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		return "", "", false
	}
	return strings.ToLower(parts[0]), strings.ToLower(strings.TrimSuffix(parts[1], ".git")), true
}

// purlEscape percent-encodes s as the purl specification asks: every byte
// but the unreserved ones (letters, digits, "-._~") and those of keep.
// "+" becomes %2B and "@" %40, as in the specification's vcs_url example.
func purlEscape(s, keep string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~", c) >= 0 || strings.IndexByte(keep, c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// archiveName is the file name the source's archive_sha256 is the
// checksum of: the first archive URL's, else the stack's archive_name.
func archiveName(s stack.Source) string {
	if s.Pin.ArchiveSHA256 == "" {
		return ""
	}
	if len(s.Archives) > 0 {
		if u, err := url.Parse(s.Archives[0]); err == nil {
			return path.Base(u.Path)
		}
	}
	return s.ArchiveName
}

// downloadLocation is where the described component can be had: the
// pinned archive's URL, else upstream's release, else the git remote at
// the pinned commit.
func downloadLocation(s stack.Source) string {
	switch {
	case len(s.Archives) > 0:
		return s.Archives[0]
	case s.Upstream != "":
		return s.Upstream
	case s.Git != "":
		l := "git+" + s.Git
		if s.Pin.GitCommit != "" {
			l += "@" + s.Pin.GitCommit
		}
		return l
	}
	return noAssertion
}

// supplierName is the name part of an SPDX supplier ("Person: A" → "A").
func supplierName(s string) string {
	for _, kind := range []string{"Organization: ", "Person: "} {
		if n, ok := strings.CutPrefix(s, kind); ok {
			return n
		}
	}
	return s
}
