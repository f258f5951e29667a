package inventory

import (
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
)

// entries returns n entries with ids of the length a 1,000 × 5 spec has.
func entries(n int) *Inventory {
	inv := &Inventory{Confirmed: n}
	for i := range n {
		inv.Entries = append(inv.Entries, Entry{ID: fmt.Sprintf("tenant-%04d_payments-%d-v2_networking.istio.io_DestinationRule", i/8, i%8), Version: "v1"})
	}
	inv.sort()
	return inv
}

func TestEncode_SmallInventoriesStayReadableLargeOnesAreCompressedAndBothReadBack(t *testing.T) {
	s := NewStore(nil, "meshcd-system", "meshcd-inventory-default")
	values := map[string]string{"other": "kept"}
	for _, tc := range []struct {
		n       int
		wantKey string
	}{{10, dataKey}, {40000, gzipKey}, {3, dataKey}} {
		inv := entries(tc.n)
		if err := s.encode(inv, values); err != nil {
			t.Fatalf("%d entries: %v", tc.n, err)
		}
		if _, ok := values[tc.wantKey]; !ok || len(values) != 2 || values["other"] != "kept" {
			t.Fatalf("%d entries: want only the key %q besides the others, got keys %v", tc.n, tc.wantKey, keys(values))
		}
		if tc.wantKey == gzipKey && len(values[gzipKey]) > sizeLimit/4 {
			t.Errorf("%d entries take %d bytes compressed", tc.n, len(values[gzipKey]))
		}
		got, err := s.decode(values)
		if err != nil || got.Len() != tc.n || got.Confirmed != tc.n || got.Entries[tc.n-1] != inv.Entries[tc.n-1] {
			t.Fatalf("%d entries: read back %d, %v", tc.n, got.Len(), err)
		}
	}
}

func TestEncode_AnInventoryNoConfigMapCanHoldIsRefusedNamingWhatToDo(t *testing.T) {
	s := NewStore(nil, "meshcd-system", "meshcd-inventory-default")
	inv := &Inventory{}
	// Ids that do not compress: names of 63 random hex characters.
	for i := range 40000 {
		ns, name := sha256.Sum256([]byte{byte(i), byte(i >> 8), 0}), sha256.Sum256([]byte{byte(i), byte(i >> 8), 1})
		inv.Entries = append(inv.Entries, Entry{ID: fmt.Sprintf("%.63x_%.63x__Service", ns, name), Version: "v1"})
	}
	values := map[string]string{dataKey: `{"entries":[]}`}
	err := s.encode(inv, values)
	if err == nil || !strings.Contains(err.Error(), "meshcd-system/meshcd-inventory-default cannot hold 40000 objects") || !strings.Contains(err.Error(), "several meshcd instances") {
		t.Fatalf("want a refusal naming the ConfigMap, the count and what to do, got %v", err)
	}
	if values[dataKey] != "" && values[dataKey] != `{"entries":[]}` {
		t.Fatalf("a refused encoding changed the values")
	}
}

func TestDecode_CorruptOrAmbiguousDataIsAnErrorNamingTheKey(t *testing.T) {
	for name, tc := range map[string]struct {
		values map[string]string
		want   string
	}{
		"both keys":        {map[string]string{dataKey: `{"entries":[]}`, gzipKey: "H4sI"}, `both keys "inventory" and "inventory.gz"`},
		"not base64":       {map[string]string{gzipKey: "%%%"}, `key "inventory.gz"`},
		"not gzip":         {map[string]string{gzipKey: "aGVsbG8="}, `key "inventory.gz"`},
		"not JSON (plain)": {map[string]string{dataKey: "{"}, `key "inventory"`},
	} {
		s := NewStore(nil, "meshcd-system", "meshcd-inventory-default")
		_, err := s.decode(tc.values)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "meshcd-system/meshcd-inventory-default is corrupt") {
			t.Errorf("%s: want an error naming %s, got %v", name, tc.want, err)
		}
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestDecode_BothKeysAreAnErrorEvenRightAfterTheGzippedOneWasDecoded(t *testing.T) {
	s := NewStore(nil, "meshcd-system", "meshcd-inventory-default")
	values := map[string]string{}
	if err := s.encode(entries(4000), values); err != nil {
		t.Fatal(err)
	}
	if _, err := s.decode(values); err != nil {
		t.Fatal(err)
	}
	values[dataKey] = `{"entries":[]}`
	if _, err := s.decode(values); err == nil || !strings.Contains(err.Error(), "both keys") {
		t.Fatalf("want an error naming both keys, got %v", err)
	}
}
