package schema

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"

	"github.com/invopop/jsonschema"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshcd/meshcd/meshspec"
)

// CombinedFile is the schema of every kind, chosen by apiVersion and kind;
// documents of other APIs pass it unchecked.
const CombinedFile = "meshcd.dev_v1alpha1.json"

// kinds are the documents of the API, each written to its own file too.
var kinds = []struct {
	name string
	obj  any
}{
	{meshspec.KindMeshNamespace, &meshspec.MeshNamespace{}},
	{meshspec.KindMeshService, &meshspec.MeshService{}},
	{meshspec.KindDataplaneRollout, &meshspec.DataplaneRollout{}},
}

// field is what the source says about one struct field.
type field struct {
	doc     string
	enum    []string
	def     string
	minimum string
	maximum string
}

// typeDoc is what the source says about one type, its fields by JSON name.
type typeDoc struct {
	doc    string
	fields map[string]field
}

// Generate returns the schema files by file name: one per kind, named after
// the kind in lower case, and CombinedFile. srcDir holds meshspec's sources.
func Generate(srcDir string) (map[string][]byte, error) {
	docs, err := parseDocs(srcDir)
	if err != nil {
		return nil, err
	}
	all := jsonschema.Definitions{}
	files := map[string][]byte{}
	var cases []*jsonschema.Schema
	for _, k := range kinds {
		defs := reflectKind(docs, k.name, k.obj)
		root := *defs[k.name]
		root.Version = jsonschema.Version
		root.Definitions = jsonschema.Definitions{}
		for name, d := range defs {
			all[name] = d
			if name != k.name {
				root.Definitions[name] = d
			}
		}
		b, err := encode(&root)
		if err != nil {
			return nil, err
		}
		files[strings.ToLower(k.name)+".json"] = b
		cases = append(cases, &jsonschema.Schema{
			If: object(&jsonschema.Schema{Required: []string{"apiVersion", "kind"}},
				"apiVersion", &jsonschema.Schema{Const: meshspec.APIVersion},
				"kind", &jsonschema.Schema{Const: k.name},
			),
			Then: &jsonschema.Schema{Ref: "#/$defs/" + k.name},
		})
	}
	b, err := encode(&jsonschema.Schema{
		Version:     jsonschema.Version,
		Title:       meshspec.APIVersion,
		Description: "meshcd's spec API. A document of apiVersion " + meshspec.APIVersion + " is checked against the schema of its kind; documents of other APIs pass unchecked.",
		AllOf:       cases,
		Definitions: all,
	})
	if err != nil {
		return nil, err
	}
	files[CombinedFile] = b
	return files, nil
}

func encode(s *jsonschema.Schema) ([]byte, error) {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding schema: %w", err)
	}
	return append(b, '\n'), nil
}

// object returns s with the properties kv, pairs of name and schema.
func object(s *jsonschema.Schema, kv ...any) *jsonschema.Schema {
	s.Properties = jsonschema.NewProperties()
	for i := 0; i+1 < len(kv); i += 2 {
		s.Properties.Set(kv[i].(string), kv[i+1].(*jsonschema.Schema))
	}
	return s
}

// reflectKind returns the definitions of one kind, its own included, with
// descriptions and markers applied.
func reflectKind(docs map[string]*typeDoc, kind string, obj any) jsonschema.Definitions {
	r := &jsonschema.Reflector{Anonymous: true, Mapper: mapType}
	defs := r.Reflect(obj).Definitions
	for name, def := range defs {
		td, ok := docs[name]
		if !ok || def.Properties == nil {
			continue
		}
		def.Description = td.doc
		for pair := def.Properties.Oldest(); pair != nil; pair = pair.Next() {
			applyField(pair.Value, td.fields[pair.Key])
		}
	}
	if sel, ok := defs["LabelSelector"]; ok {
		sel.Description = "A label query over namespaces: matchLabels and matchExpressions are ANDed."
	}
	k := defs[kind]
	if meta, ok := k.Properties.Get("metadata"); ok {
		meta.Description = "Metadata names the document: its name, namespace, labels and annotations; meshcd reads no other metadata."
	}
	k.Properties.Set("apiVersion", &jsonschema.Schema{Type: "string", Const: meshspec.APIVersion, Description: "The version of meshcd's spec API."})
	k.Properties.Set("kind", &jsonschema.Schema{Type: "string", Const: kind, Description: "The kind of the document."})
	k.Required = append([]string{"apiVersion", "kind"}, k.Required...)
	return defs
}

// applyField sets a property's description, enum, default and bounds.
func applyField(s *jsonschema.Schema, f field) {
	s.Description = f.doc
	for _, e := range f.enum {
		s.Enum = append(s.Enum, e)
	}
	if f.def != "" {
		switch s.Type {
		case "integer":
			n, err := strconv.Atoi(f.def)
			if err == nil {
				s.Default = n
			}
		default:
			s.Default = f.def
		}
	}
	s.Minimum = json.Number(f.minimum)
	s.Maximum = json.Number(f.maximum)
}

// mapType gives the schema of the Kubernetes types a spec document uses
// differently from their Go shape.
func mapType(t reflect.Type) *jsonschema.Schema {
	stringMap := func(desc string) *jsonschema.Schema {
		return &jsonschema.Schema{Type: "object", AdditionalProperties: &jsonschema.Schema{Type: "string"}, Description: desc}
	}
	switch t {
	case reflect.TypeOf(metav1.ObjectMeta{}):
		return object(&jsonschema.Schema{
			Type:                 "object",
			Description:          "The document's name, namespace, labels and annotations; meshcd reads no other metadata.",
			Required:             []string{"name"},
			AdditionalProperties: jsonschema.FalseSchema,
		},
			"name", &jsonschema.Schema{Type: "string", Description: "The name of the document, a DNS label."},
			"namespace", &jsonschema.Schema{Type: "string", Description: "The namespace, for namespaced kinds (MeshService)."},
			"labels", stringMap("Labels of the document."),
			"annotations", stringMap("Annotations of the document."),
		)
	case reflect.TypeOf(metav1.Duration{}):
		return &jsonschema.Schema{
			Type:        "string",
			Pattern:     `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`,
			Description: "A duration such as 500ms, 2s or 1m30s.",
		}
	}
	return nil
}

// parseDocs reads the doc comments and markers of the types in srcDir.
func parseDocs(srcDir string) (map[string]*typeDoc, error) {
	paths, err := filepath.Glob(filepath.Join(srcDir, "*.go"))
	if err != nil {
		return nil, err
	}
	docs := map[string]*typeDoc{}
	fset := token.NewFileSet()
	for _, path := range paths {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, spec := range gd.Specs {
				ts := spec.(*ast.TypeSpec)
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					continue
				}
				group := ts.Doc
				if group == nil && len(gd.Specs) == 1 {
					group = gd.Doc
				}
				doc, _ := parseComment(group.Text())
				td := &typeDoc{doc: doc, fields: map[string]field{}}
				for _, fl := range st.Fields.List {
					if fl.Tag == nil {
						continue
					}
					tag, err := strconv.Unquote(fl.Tag.Value)
					if err != nil {
						return nil, fmt.Errorf("reading the tag of %s in %s: %w", ts.Name.Name, path, err)
					}
					name, _, _ := strings.Cut(reflect.StructTag(tag).Get("json"), ",")
					if name == "" || name == "-" {
						continue
					}
					td.fields[name] = parseField(fl.Doc.Text())
				}
				docs[ts.Name.Name] = td
			}
		}
	}
	return docs, nil
}

// parseField splits a field comment into its description and markers.
func parseField(text string) field {
	doc, markers := parseComment(text)
	f := field{doc: doc}
	for _, m := range markers {
		key, value, _ := strings.Cut(m, "=")
		switch key {
		case "+kubebuilder:validation:Enum":
			f.enum = strings.Split(value, ";")
		case "+kubebuilder:default":
			f.def = value
		case "+kubebuilder:validation:Minimum":
			f.minimum = value
		case "+kubebuilder:validation:Maximum":
			f.maximum = value
		}
	}
	return f
}

// parseComment returns the prose of a doc comment, its lines joined into
// paragraphs, and its +marker lines.
func parseComment(text string) (string, []string) {
	var paragraphs, markers []string
	var cur []string
	flush := func() {
		if len(cur) > 0 {
			paragraphs = append(paragraphs, strings.Join(cur, " "))
			cur = nil
		}
	}
	for line := range strings.SplitSeq(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "+"):
			markers = append(markers, line)
		case line == "":
			flush()
		default:
			cur = append(cur, line)
		}
	}
	flush()
	return strings.Join(paragraphs, "\n\n"), markers
}
