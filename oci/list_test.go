package oci

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/keyward/keyward/reference"
)

// catalogServer serves /v2/_catalog and /v2/app/tags/list in pages that
// link to the next with the Link header (distribution-spec "Listing
// Tags"); next returns the link of page i ("" for none).
func catalogServer(t *testing.T, pages [][]string, next func(i int) string, status int) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if status != http.StatusOK {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			fmt.Fprint(w, `{"errors":[{"code":"UNSUPPORTED","message":"no catalog"}]}`)
			return
		}
		i := 0
		fmt.Sscanf(r.URL.Query().Get("page"), "%d", &i)
		if i >= len(pages) {
			http.NotFound(w, r)
			return
		}
		if l := next(i); l != "" {
			w.Header().Set("Link", "<"+l+`>; rel="next"`)
		}
		key := "repositories"
		if strings.HasSuffix(r.URL.Path, "/tags/list") {
			key = "tags"
		}
		fmt.Fprintf(w, `{%q:["%s"]}`, key, strings.Join(pages[i], `","`))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func listRemote() *Remote {
	return NewRemote(RemoteOptions{PlainHTTP: func(string) bool { return true }})
}

func TestRepositoriesAndTagsPaginate(t *testing.T) {
	pages := [][]string{{"a", "b"}, {"c"}, {"d/e"}}
	srv := catalogServer(t, pages, func(i int) string {
		if i+1 < len(pages) {
			return fmt.Sprintf("?page=%d", i+1)
		}
		return ""
	}, http.StatusOK)
	host := strings.TrimPrefix(srv.URL, "http://")
	r := listRemote()
	var repos []string
	if err := r.Repositories(context.Background(), host, func(p []string) error { repos = append(repos, p...); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(repos, []string{"a", "b", "c", "d/e"}) {
		t.Errorf("repositories %v", repos)
	}
	ref, err := reference.Parse(host + "/app:x")
	if err != nil {
		t.Fatal(err)
	}
	var tags []string
	if err := r.Tags(context.Background(), ref, func(p []string) error { tags = append(tags, p...); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tags, []string{"a", "b", "c", "d/e"}) {
		t.Errorf("tags %v", tags)
	}
}

func TestRepositoriesPageLoop(t *testing.T) {
	srv := catalogServer(t, [][]string{{"a"}, {"b"}}, func(i int) string { return fmt.Sprintf("?page=%d", 1-i) }, http.StatusOK)
	host := strings.TrimPrefix(srv.URL, "http://")
	err := listRemote().Repositories(context.Background(), host, func([]string) error { return nil })
	if !errors.Is(err, ErrPageLoop) {
		t.Errorf("a catalog whose pages link in a loop: %v", err)
	}
}

func TestRepositoriesRefused(t *testing.T) {
	for _, status := range []int{http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusBadRequest} {
		srv := catalogServer(t, nil, nil, status)
		host := strings.TrimPrefix(srv.URL, "http://")
		err := listRemote().Repositories(context.Background(), host, func([]string) error { return nil })
		var refused *CatalogRefusedError
		if !errors.As(err, &refused) || refused.Host != host || refused.StatusCode != status {
			t.Errorf("catalog answered %d (UNSUPPORTED): %v", status, err)
		}
	}
}

func TestPullScopeKeepsCatalog(t *testing.T) {
	if got := pullScope("registry:catalog:*"); got != "registry:catalog:*" {
		t.Errorf("pullScope(catalog) = %q", got)
	}
	if got := pullScope("registry:other:*"); got != "" {
		t.Errorf("pullScope(registry:other) = %q", got)
	}
}
