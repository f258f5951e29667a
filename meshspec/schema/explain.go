package schema

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/meshcd/meshcd/meshspec"
)

// combined is the generated schema of every kind, as committed.
//
//go:embed meshcd.dev_v1alpha1.json
var combined []byte

// node is the part of a JSON Schema that Explain shows.
type node struct {
	Ref                  string           `json:"$ref"`
	Type                 string           `json:"type"`
	Description          string           `json:"description"`
	Properties           map[string]*node `json:"properties"`
	Required             []string         `json:"required"`
	Items                *node            `json:"items"`
	AdditionalProperties json.RawMessage  `json:"additionalProperties"`
	Enum                 []any            `json:"enum"`
	Default              any              `json:"default"`
	Const                any              `json:"const"`
	Minimum              json.Number      `json:"minimum"`
	Maximum              json.Number      `json:"maximum"`
}

// values returns the schema of a map's values, or nil when n is no map.
func (n *node) values() *node {
	if len(n.AdditionalProperties) == 0 || n.AdditionalProperties[0] != '{' {
		return nil
	}
	var v node
	if json.Unmarshal(n.AdditionalProperties, &v) != nil {
		return nil
	}
	return &v
}

// definitions are the schema's $defs, decoded once.
var definitions = sync.OnceValues(func() (map[string]*node, error) {
	var doc struct {
		Defs map[string]*node `json:"$defs"`
	}
	if err := json.Unmarshal(combined, &doc); err != nil {
		return nil, fmt.Errorf("the embedded schema %s is unreadable: %w", CombinedFile, err)
	}
	return doc.Defs, nil
})

// Explain renders a reference of the spec API in the manner of kubectl
// explain. An empty path lists the kinds; "KIND" shows a kind and its
// fields; "KIND.FIELD.FIELD" shows one field, its type, description and
// fields. Lists and maps are stepped through: MeshService.spec.routes.match
// is the match of a route. Kinds are matched without regard to case, fields
// exactly; a misspelt name gets a did-you-mean.
func Explain(path string) (string, error) {
	defs, err := definitions()
	if err != nil {
		return "", err
	}
	if path == "" {
		return listKinds(defs), nil
	}
	parts := strings.Split(path, ".")
	kind, err := findKind(parts[0])
	if err != nil {
		return "", err
	}
	cur := defs[kind]
	if cur == nil {
		return "", fmt.Errorf("kind %s is missing from the embedded schema %s", kind, CombinedFile)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "KIND:     %s\nVERSION:  %s\n\n", kind, meshspec.APIVersion)
	desc := cur.Description
	for i, name := range parts[1:] {
		parent := fieldsOf(defs, cur)
		field, ok := parent.Properties[name]
		if !ok {
			at := strings.Join(append([]string{kind}, parts[1:i+1]...), ".")
			msg := fmt.Sprintf("%s has no field %q; ", at, name)
			if len(parent.Properties) == 0 {
				return "", fmt.Errorf("%sit is of type %s, which has no fields", msg, typeName(defs, cur))
			}
			if s := meshspec.Closest(name, slices.Sorted(maps.Keys(parent.Properties))); s != "" {
				msg += "did you mean " + s + "? "
			}
			return "", fmt.Errorf("%s`meshcd explain %s` lists its fields", msg, at)
		}
		cur, desc = field, describe(defs, field)
	}
	if len(parts) > 1 {
		fmt.Fprintf(&b, "FIELD:    %s <%s>\n\n", strings.Join(parts[1:], "."), typeName(defs, cur))
	}
	b.WriteString("DESCRIPTION:\n")
	writeText(&b, desc+facts(cur), "    ")
	if fields := fieldsOf(defs, cur); len(fields.Properties) > 0 {
		b.WriteString("\nFIELDS:\n")
		for _, name := range slices.Sorted(maps.Keys(fields.Properties)) {
			f := fields.Properties[name]
			fmt.Fprintf(&b, "  %s\t<%s>", name, typeName(defs, f))
			if slices.Contains(fields.Required, name) {
				b.WriteString(" -required-")
			}
			b.WriteString("\n")
			writeText(&b, describe(defs, f)+facts(f), "    ")
			b.WriteString("\n")
		}
	}
	return b.String(), nil
}

// listKinds lists the kinds of the API, each with the first sentence of
// its description.
func listKinds(defs map[string]*node) string {
	var b strings.Builder
	fmt.Fprintf(&b, "KINDS of %s:\n", meshspec.APIVersion)
	for _, k := range kinds {
		desc := ""
		if d := defs[k.name]; d != nil {
			desc, _, _ = strings.Cut(d.Description, ". ")
			desc = strings.TrimSuffix(desc, ".") + "."
		}
		fmt.Fprintf(&b, "  %-18s %s\n", k.name, desc)
	}
	b.WriteString("\nRun `meshcd explain KIND` for the fields of a kind, `meshcd explain KIND.FIELD` for one field.\n")
	return b.String()
}

// findKind returns the kind named, matched without regard to case.
func findKind(name string) (string, error) {
	var names []string
	for _, k := range kinds {
		if strings.EqualFold(k.name, name) {
			return k.name, nil
		}
		names = append(names, k.name)
	}
	msg := fmt.Sprintf("unknown kind %q; ", name)
	if s := meshspec.Closest(name, names); s != "" {
		msg += "did you mean " + s + "? "
	}
	return "", fmt.Errorf("%sthe kinds of %s are %s", msg, meshspec.APIVersion, strings.Join(names, ", "))
}

// resolve follows a $ref to its definition.
func resolve(defs map[string]*node, n *node) *node {
	if n.Ref != "" {
		if d := defs[strings.TrimPrefix(n.Ref, "#/$defs/")]; d != nil {
			return d
		}
	}
	return n
}

// fieldsOf returns the node whose properties are n's fields: n itself or
// its definition, stepping through the items of a list and the values of
// a map.
func fieldsOf(defs map[string]*node, n *node) *node {
	for {
		n = resolve(defs, n)
		switch {
		case n.Items != nil:
			n = n.Items
		case n.values() != nil:
			n = n.values()
		default:
			return n
		}
	}
}

// describe returns a field's description, or its type's when it has none.
func describe(defs map[string]*node, n *node) string {
	if n.Description != "" {
		return n.Description
	}
	if d := resolve(defs, n).Description; d != "" {
		return d
	}
	return "<empty>"
}

// typeName names a field's type as kubectl explain does, with meshcd's
// own types by their name: string, []Route, map[string]integer.
func typeName(defs map[string]*node, n *node) string {
	if n.Ref != "" {
		return strings.TrimPrefix(n.Ref, "#/$defs/")
	}
	switch {
	case n.Items != nil:
		return "[]" + typeName(defs, n.Items)
	case n.values() != nil:
		return "map[string]" + typeName(defs, n.values())
	case n.Type == "object":
		return "Object"
	case n.Type == "":
		return "any"
	}
	return n.Type
}

// facts states a field's fixed value, allowed values, default and bounds.
func facts(n *node) string {
	var out []string
	if n.Const != nil {
		out = append(out, fmt.Sprintf("Value: %v.", n.Const))
	}
	if len(n.Enum) > 0 {
		vals := make([]string, len(n.Enum))
		for i, v := range n.Enum {
			vals[i] = fmt.Sprint(v)
		}
		out = append(out, "One of: "+strings.Join(vals, ", ")+".")
	}
	if n.Default != nil {
		out = append(out, fmt.Sprintf("Default: %v.", n.Default))
	}
	switch {
	case n.Minimum != "" && n.Maximum != "":
		out = append(out, fmt.Sprintf("From %s to %s.", n.Minimum, n.Maximum))
	case n.Minimum != "":
		out = append(out, fmt.Sprintf("At least %s.", n.Minimum))
	case n.Maximum != "":
		out = append(out, fmt.Sprintf("At most %s.", n.Maximum))
	}
	if len(out) == 0 {
		return ""
	}
	return "\n\n" + strings.Join(out, " ")
}

// writeText writes text wrapped at 80 columns, each line indented,
// keeping its paragraphs.
func writeText(b *strings.Builder, text, indent string) {
	for i, para := range strings.Split(text, "\n\n") {
		if i > 0 {
			b.WriteString("\n")
		}
		width := len(indent)
		b.WriteString(indent)
		for j, word := range strings.Fields(para) {
			if j > 0 && width+1+len(word) > 80 {
				b.WriteString("\n" + indent)
				width = len(indent)
			} else if j > 0 {
				b.WriteString(" ")
				width++
			}
			b.WriteString(word)
			width += len(word)
		}
		b.WriteString("\n")
	}
}
