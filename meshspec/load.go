package meshspec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"reflect"
	"regexp"
	goruntime "runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// Limits that keep a hostile file from exhausting memory.
const (
	// MaxFileSize is the largest file Load reads.
	MaxFileSize = 8 << 20
	// MaxNodes bounds the YAML nodes one file may expand to, aliases included.
	MaxNodes = 1 << 20
)

// Position is where a document or a field stands in its source.
type Position struct {
	File   string `json:"file,omitempty"`
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
}

// String renders the position as file:line:column, leaving out what is unknown.
func (p Position) String() string {
	switch {
	case p.Line == 0:
		return p.File
	case p.Column == 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
}

// FieldError is a problem with one field of one document.
type FieldError struct {
	Position
	// Object is "Kind namespace/name" or "Kind name", when known.
	Object string
	// Field is the path of the field, such as spec.routes[1].backends.
	Field string
	// Message says what is wrong and what to do.
	Message string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.Position.String())
	b.WriteString(": ")
	if e.Object != "" {
		b.WriteString(e.Object)
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// Load reads the YAML documents of one file. Documents of the meshcd.dev
// API are decoded strictly into their types: an unknown field, a wrong type
// or a value out of range is an error naming file:line:column and the field
// path. Other documents are returned as plain manifests. Every error of the
// file is returned, joined; on error the Set is nil.
func Load(file string, data []byte) (*Set, error) {
	if len(data) > MaxFileSize {
		return nil, &FieldError{Position: Position{File: file}, Message: fmt.Sprintf("file is %d bytes, more than the %d meshcd reads; split it", len(data), MaxFileSize)}
	}
	chunks := splitDocuments(data)
	sets := make([]*Set, len(chunks))
	errs := make([]error, len(chunks))
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(goruntime.GOMAXPROCS(0), len(chunks)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				sets[i], errs[i] = loadChunk(file, chunks[i])
			}
		}()
	}
	for i := range chunks {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	set := NewSet()
	for _, s := range sets {
		if err := set.Merge(s); err != nil {
			return nil, err
		}
	}
	return set, nil
}

// chunk is a run of whole YAML documents of a file, and the line it starts on.
type chunk struct {
	line int
	data []byte
}

// splitMin is the file size from which documents are decoded in parallel.
const splitMin = 64 << 10

// splitDocuments cuts a large file into chunks at document markers ("---" at
// the start of a line, which YAML forbids inside content), so that they can
// be decoded in parallel. Small files, and files with directives, stay whole.
func splitDocuments(data []byte) []chunk {
	if len(data) < splitMin || bytes.HasPrefix(data, []byte("%")) || bytes.Contains(data, []byte("\n%")) {
		return []chunk{{line: 1, data: data}}
	}
	var (
		out   []chunk
		start = 0
		first = 1
		line  = 1
	)
	for i := 0; i < len(data); {
		end := bytes.IndexByte(data[i:], '\n')
		if end < 0 {
			end = len(data)
		} else {
			end += i
		}
		l := data[i:end]
		if i > start && bytes.HasPrefix(l, []byte("---")) && (len(l) == 3 || l[3] == ' ' || l[3] == '\t' || l[3] == '\r') {
			out = append(out, chunk{line: first, data: data[start:i]})
			start, first = i, line
		}
		i = end + 1
		line++
	}
	return append(out, chunk{line: first, data: data[start:]})
}

// loadChunk decodes the documents of one chunk into a Set of their own.
func loadChunk(file string, c chunk) (*Set, error) {
	set := NewSet()
	var errs []error
	budget := MaxNodes
	dec := yaml.NewDecoder(bytes.NewReader(c.data))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			errs = append(errs, syntaxError(file, c, err))
			break
		}
		shiftLines(&doc, c.line-1)
		if err := loadDocument(set, file, &doc, &budget); err != nil {
			errs = append(errs, err)
		}
		if budget < 0 {
			break // the rest of the file would only repeat the refusal
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return set, nil
}

// shiftLines moves every node of a chunk to its line in the whole file.
func shiftLines(n *yaml.Node, by int) {
	if by == 0 {
		return
	}
	n.Line += by
	for _, c := range n.Content {
		shiftLines(c, by)
	}
}

// loadDocument adds one document to set.
func loadDocument(set *Set, file string, doc *yaml.Node, budget *int) error {
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil
		}
		doc = doc.Content[0]
	}
	pos := Position{File: file, Line: doc.Line, Column: doc.Column}
	if doc.Kind == yaml.ScalarNode && doc.Tag == "!!null" {
		return nil // an empty document, as between two "---"
	}
	if doc.Kind != yaml.MappingNode {
		return &FieldError{Position: pos, Message: "a document must be a mapping with apiVersion and kind"}
	}
	apiVersion, kind := scalarField(doc, "apiVersion"), scalarField(doc, "kind")
	if apiVersion == "" || kind == "" {
		return &FieldError{Position: pos, Message: "document has no apiVersion or kind; every document must name both"}
	}
	if items, ok := listItems(doc, kind); ok {
		return loadList(set, file, items, budget)
	}
	w := &walker{file: file, object: objectOf(doc, kind), kind: kind, budget: budget, positions: map[string]Position{}}
	if strings.HasPrefix(apiVersion, Group+"/") {
		return loadSpec(set, w, doc, pos, apiVersion, kind)
	}
	v := w.generic(doc, "")
	w.identityStrings(doc)
	if len(w.errs) > 0 {
		return errors.Join(w.errs...)
	}
	obj := &unstructured.Unstructured{Object: v.(map[string]any)}
	if obj.GetName() == "" && obj.GetGenerateName() == "" {
		return &FieldError{Position: pos, Object: kind, Field: "metadata.name", Message: "a manifest needs a name"}
	}
	return set.addManifest(obj, pos)
}

// listItems returns the items of a List document: kind List, or a kind
// ending in List (ConfigMapList, as the API server's lists are called) with
// an items field. kubectl unpacks every object whose items field is a list;
// meshcd also asks for the List kind, so that a resource that merely has
// an items field is not taken apart, and so that a custom kind such as
// IPAllowList without items stays one object.
func listItems(doc *yaml.Node, kind string) (*yaml.Node, bool) {
	items := valueOf(doc, "items")
	if kind != "List" && (items == nil || !strings.HasSuffix(kind, "List")) {
		return nil, false
	}
	return items, true
}

// loadList adds the items of a List, each checked as a document of its
// own and kept with its own position; an item's errors name its index.
func loadList(set *Set, file string, items *yaml.Node, budget *int) error {
	if items == nil || items.Kind == yaml.ScalarNode && items.Tag == "!!null" {
		return nil
	}
	if items.Kind != yaml.SequenceNode {
		return &FieldError{Position: Position{File: file, Line: items.Line, Column: items.Column}, Field: "items", Message: fmt.Sprintf("want a list of objects, not a %s", nodeKind(items))}
	}
	var errs []error
	for i, item := range items.Content {
		if *budget--; *budget < 0 {
			errs = append(errs, &FieldError{Position: Position{File: file, Line: item.Line, Column: item.Column}, Field: fmt.Sprintf("items[%d]", i), Message: fmt.Sprintf("file expands to more than %d YAML nodes; meshcd refuses it", MaxNodes)})
			break
		}
		if item.Kind == yaml.AliasNode && item.Alias != nil {
			item = item.Alias
		}
		var err error
		if item.Kind == yaml.MappingNode {
			err = loadDocument(set, file, item, budget)
		} else {
			err = &FieldError{Position: Position{File: file, Line: item.Line, Column: item.Column}, Message: "a List item must be an object with apiVersion and kind"}
		}
		if err != nil {
			errs = append(errs, inItem(err, i))
		}
	}
	return errors.Join(errs...)
}

// inItem roots the field paths of an item's errors at items[i] of its List.
func inItem(err error, i int) error {
	switch e := err.(type) {
	case *FieldError:
		field := fmt.Sprintf("items[%d]", i)
		if e.Field != "" {
			field = join(field, e.Field)
		}
		e.Field = field
	case interface{ Unwrap() []error }:
		for _, inner := range e.Unwrap() {
			inItem(inner, i)
		}
	}
	return err
}

// loadSpec decodes a meshcd.dev document strictly.
func loadSpec(set *Set, w *walker, doc *yaml.Node, pos Position, apiVersion, kind string) error {
	if apiVersion != APIVersion {
		return &FieldError{Position: pos, Object: kind, Field: "apiVersion", Message: fmt.Sprintf("unsupported version %q; use %s", apiVersion, APIVersion)}
	}
	var target any
	switch kind {
	case KindMeshNamespace:
		target = &MeshNamespace{}
	case KindMeshService:
		target = &MeshService{}
	case KindDataplaneRollout:
		target = &DataplaneRollout{}
	default:
		return &FieldError{Position: pos, Field: "kind", Message: fmt.Sprintf("unknown kind %q in %s; use %s, %s or %s", kind, APIVersion, KindMeshNamespace, KindMeshService, KindDataplaneRollout)}
	}
	v := w.typed(doc, reflect.TypeOf(target).Elem(), "")
	if len(w.errs) > 0 {
		return errors.Join(w.errs...)
	}
	m, _ := v.(map[string]any)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, target); err != nil {
		return &FieldError{Position: pos, Object: kind, Message: "cannot decode document: " + err.Error()}
	}
	doc2 := &document{file: w.file, positions: w.positions, pos: pos}
	switch t := target.(type) {
	case *MeshNamespace:
		return set.addNamespace(t, doc2)
	case *MeshService:
		return set.addService(t, doc2)
	default:
		return set.addRollout(t.(*DataplaneRollout), doc2)
	}
}

// document is one decoded spec document and the positions of its fields.
type document struct {
	file      string
	pos       Position
	positions map[string]Position
}

// at returns the position of a field path, or of the nearest parent known.
func (d *document) at(path string) Position {
	for p := path; p != ""; {
		if pos, ok := d.positions[p]; ok {
			return pos
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return d.pos
}

// walker converts YAML nodes into JSON-ready values, checking them against
// Go types and recording the position of every field path.
type walker struct {
	file string
	// object is "Kind namespace/name" of the document, when its metadata is readable.
	object string
	// kind is the document's kind, which explain takes.
	kind      string
	budget    *int
	exhausted bool
	errs      []error
	positions map[string]Position
}

func (w *walker) fail(n *yaml.Node, path, format string, args ...any) {
	w.errs = append(w.errs, &FieldError{Position: Position{File: w.file, Line: n.Line, Column: n.Column}, Object: w.object, Field: path, Message: fmt.Sprintf(format, args...)})
}

// spend charges one node to the file's budget and reports whether it is
// exhausted; the first node over budget is reported as an error.
func (w *walker) spend(n *yaml.Node, path string) bool {
	*w.budget--
	if *w.budget >= 0 {
		return false
	}
	if !w.exhausted {
		w.exhausted = true
		w.fail(n, path, "file expands to more than %d YAML nodes (an alias bomb?); meshcd refuses it", MaxNodes)
	}
	return true
}

func (w *walker) record(n *yaml.Node, path string) {
	if path != "" {
		w.positions[path] = Position{File: w.file, Line: n.Line, Column: n.Column}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var (
	durationType   = reflect.TypeOf(metav1.Duration{})
	objectMetaType = reflect.TypeOf(metav1.ObjectMeta{})
	typeMetaType   = reflect.TypeOf(metav1.TypeMeta{})
)

// objectMetaFields are the metadata fields a spec document may set.
var objectMetaFields = map[string]reflect.Type{
	"name":        reflect.TypeOf(""),
	"namespace":   reflect.TypeOf(""),
	"labels":      reflect.TypeOf(map[string]string{}),
	"annotations": reflect.TypeOf(map[string]string{}),
}

// typed converts n, which must fit type t, into a JSON-ready value.
func (w *walker) typed(n *yaml.Node, t reflect.Type, path string) any {
	if w.spend(n, path) {
		return nil
	}
	if n.Kind == yaml.AliasNode {
		return w.typed(n.Alias, t, path)
	}
	w.record(n, path)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == durationType:
		if n.Kind != yaml.ScalarNode {
			w.fail(n, path, "want a duration such as 500ms or 2s")
			return nil
		}
		d, err := time.ParseDuration(n.Value)
		if err != nil || d < 0 {
			w.fail(n, path, "%q is not a duration; write one such as 500ms or 2s", n.Value)
			return nil
		}
		return n.Value
	case t == objectMetaType:
		return w.fields(n, path, objectMetaFields, "only name, namespace, labels and annotations are read here")
	case t.Kind() == reflect.Struct:
		return w.fields(n, path, structFields(t), "")
	case t.Kind() == reflect.Map:
		if n.Kind != yaml.MappingNode {
			w.fail(n, path, "want a mapping")
			return nil
		}
		out := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				w.fail(k, path, "keys must be plain strings")
				continue
			}
			p := join(path, k.Value)
			if _, dup := out[k.Value]; dup {
				w.fail(k, p, "key is set twice")
				continue
			}
			out[k.Value] = w.typed(v, t.Elem(), p)
			w.record(k, p)
		}
		return out
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.fail(n, path, "want a list")
			return nil
		}
		out := make([]any, 0, len(n.Content))
		for i, c := range n.Content {
			out = append(out, w.typed(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i)))
		}
		return out
	}
	if n.Kind != yaml.ScalarNode {
		w.fail(n, path, "want a single value, not a %s", nodeKind(n))
		return nil
	}
	switch t.Kind() {
	case reflect.String:
		return n.Value
	case reflect.Bool:
		b, err := strconv.ParseBool(n.Value)
		if err != nil || n.Tag != "!!bool" {
			w.fail(n, path, "%q is not true or false", n.Value)
			return nil
		}
		return b
	case reflect.Int32, reflect.Int64, reflect.Int:
		i, err := strconv.ParseInt(n.Value, 10, t.Bits())
		if err != nil || n.Tag != "!!int" {
			w.fail(n, path, "%q is not a whole number", n.Value)
			return nil
		}
		return i
	case reflect.Float64:
		f, err := strconv.ParseFloat(n.Value, 64)
		if err != nil || (n.Tag != "!!int" && n.Tag != "!!float") || math.IsInf(f, 0) || math.IsNaN(f) {
			w.fail(n, path, "%q is not a number", n.Value)
			return nil
		}
		return f
	}
	w.fail(n, path, "unsupported field type %s", t)
	return nil
}

// fields converts a mapping node into a struct's fields, refusing unknown
// keys with a did-you-mean and, when known is empty, the explain command
// that lists the fields.
func (w *walker) fields(n *yaml.Node, path string, fields map[string]reflect.Type, known string) any {
	if n.Kind != yaml.MappingNode {
		w.fail(n, path, "want a mapping, not a %s", nodeKind(n))
		return nil
	}
	out := map[string]any{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		p := join(path, k.Value)
		ft, ok := fields[k.Value]
		if !ok {
			w.fail(k, p, "%s", unknownField(k.Value, fields, known, w.kind, path))
			continue
		}
		if _, dup := out[k.Value]; dup {
			w.fail(k, p, "field is set twice")
			continue
		}
		out[k.Value] = w.typed(v, ft, p)
		w.record(k, p)
	}
	return out
}

// unknownField says that key is not one of fields, suggests the closest
// field when it is near enough to be a typo, and says where the fields
// are listed: known, or "meshcd explain KIND.PATH".
func unknownField(key string, fields map[string]reflect.Type, known, kind, path string) string {
	msg := "unknown field; "
	if s := Closest(key, slices.Sorted(maps.Keys(fields))); s != "" {
		msg += "did you mean " + s + "? "
	}
	if known != "" {
		return msg + known
	}
	ref := kind
	if p := indexRE.ReplaceAllString(path, ""); p != "" {
		ref += "." + p
	}
	return msg + "`meshcd explain " + ref + "` lists the fields"
}

// indexRE matches the list indices of a field path, which explain does not take.
var indexRE = regexp.MustCompile(`\[[0-9]+\]`)

// Closest returns the candidate nearest to word by edit distance, case
// ignored, when it is at most a third of word's length (at least 1) away:
// the did-you-mean of a misspelt name. It returns "" when none is that close.
func Closest(word string, candidates []string) string {
	best, bestDist := "", max(1, len(word)/3)+1
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(word), strings.ToLower(c)); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// structFields returns t's fields by JSON name, inline fields included.
func structFields(t reflect.Type) map[string]reflect.Type {
	if f, ok := fieldCache.Load(t); ok {
		return f.(map[string]reflect.Type)
	}
	fields := map[string]reflect.Type{}
	var collect func(t reflect.Type)
	collect = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			switch {
			case f.Type == typeMetaType:
				fields["apiVersion"] = reflect.TypeOf("")
				fields["kind"] = reflect.TypeOf("")
			case strings.Contains(opts, "inline"):
				collect(f.Type)
			case name != "" && name != "-":
				fields[name] = f.Type
			}
		}
	}
	collect(t)
	fieldCache.Store(t, fields)
	return fields
}

// fieldCache holds structFields' maps by type: types never change, and the
// maps are only read.
var fieldCache sync.Map

// generic converts a node of a plain manifest into JSON-ready values.
func (w *walker) generic(n *yaml.Node, path string) any {
	if w.spend(n, path) {
		return nil
	}
	switch n.Kind {
	case yaml.AliasNode:
		return w.generic(n.Alias, path)
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
				w.fail(k, path, "YAML merge keys (<<) are not supported; write the fields out")
				continue
			}
			if k.Kind != yaml.ScalarNode {
				w.fail(k, path, "keys must be plain strings")
				continue
			}
			p := join(path, k.Value)
			if _, dup := out[k.Value]; dup {
				w.fail(k, p, "key is set twice")
				continue
			}
			out[k.Value] = w.generic(v, p)
		}
		return out
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for i, c := range n.Content {
			out = append(out, w.generic(c, fmt.Sprintf("%s[%d]", path, i)))
		}
		return out
	case yaml.ScalarNode:
		return scalar(n)
	}
	w.fail(n, path, "unsupported YAML node")
	return nil
}

// scalar converts a scalar by its resolved YAML tag, as Kubernetes does.
func scalar(n *yaml.Node) any {
	switch n.Tag {
	case "!!null":
		return nil
	case "!!bool":
		if b, err := strconv.ParseBool(n.Value); err == nil {
			return b
		}
	case "!!int":
		if i, err := strconv.ParseInt(n.Value, 0, 64); err == nil {
			return i
		}
	case "!!float":
		// JSON has no infinity or NaN; keep those as the text written.
		if f, err := strconv.ParseFloat(n.Value, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return f
		}
	}
	return n.Value
}

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	}
	return "value"
}

// identityStrings refuses a plain manifest whose apiVersion, kind,
// metadata.name or metadata.namespace is not a string, such as "kind: 0":
// decoded, it would be an object without that field.
func (w *walker) identityStrings(doc *yaml.Node) {
	check := func(m *yaml.Node, key, path string) {
		n := valueOf(m, key)
		switch {
		case n == nil, n.Kind == yaml.ScalarNode && (n.Tag == "!!str" || n.Tag == "!!null"):
		case n.Kind == yaml.ScalarNode:
			w.fail(n, path, "want a string, got %s; quote it", n.Value)
		default:
			w.fail(n, path, "want a string, not a %s", nodeKind(n))
		}
	}
	check(doc, "apiVersion", "apiVersion")
	check(doc, "kind", "kind")
	if meta := valueOf(doc, "metadata"); meta != nil && meta.Kind == yaml.MappingNode {
		check(meta, "name", "metadata.name")
		check(meta, "namespace", "metadata.namespace")
	}
}

// valueOf returns the value of a key of a mapping, aliases followed, or nil.
func valueOf(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			n := m.Content[i+1]
			if n.Kind == yaml.AliasNode && n.Alias != nil {
				n = n.Alias
			}
			return n
		}
	}
	return nil
}

// objectOf names a document "Kind namespace/name" or "Kind name" from its
// metadata, or returns "" when the name cannot be read.
func objectOf(doc *yaml.Node, kind string) string {
	var meta *yaml.Node
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if doc.Content[i].Value == "metadata" && doc.Content[i+1].Kind == yaml.MappingNode {
			meta = doc.Content[i+1]
		}
	}
	if meta == nil {
		return ""
	}
	name := scalarField(meta, "name")
	if name == "" {
		return ""
	}
	if ns := scalarField(meta, "namespace"); ns != "" {
		return kind + " " + ns + "/" + name
	}
	return kind + " " + name
}

// scalarField returns the value of a top-level scalar key of a mapping.
func scalarField(m *yaml.Node, key string) string {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key && m.Content[i+1].Kind == yaml.ScalarNode {
			return m.Content[i+1].Value
		}
	}
	return ""
}

// syntaxError reports a YAML syntax error of a chunk at the line and column
// where the document stops being valid. yaml.v3's message names only a line,
// and for a parser error the line where the enclosing construct starts (one
// too few, too), not where the problem is; so the place is found again, by
// bisecting the chunk for a prefix that fails with the same problem while
// the prefix one byte shorter does not: its last character is one the parser
// could not accept, or, for a flow collection, its opening bracket (see
// flowHints).
func syntaxError(file string, c chunk, err error) *FieldError {
	line, problem := yamlProblem(err)
	pos := Position{File: file}
	failsAlike := func(n int) bool {
		dec := yaml.NewDecoder(bytes.NewReader(c.data[:n]))
		for {
			var doc yaml.Node
			err := dec.Decode(&doc)
			if err == nil {
				continue
			}
			_, p := yamlProblem(err)
			return !errors.Is(err, io.EOF) && p == problem
		}
	}
	// yaml.v3's line is never after the problem's, and at most one before
	// the construct's; the problem is most often within a few lines of it.
	// Searching there first keeps a large document from being parsed
	// twenty times over.
	lo, hi := 0, len(c.data)
	if line > 0 {
		lo = lineStart(c.data, line-1)
		if end := lineStart(c.data, line+3); end < hi && failsAlike(end) {
			hi = end
		}
	}
	if n := lo + sort.Search(hi-lo+1, func(i int) bool { return failsAlike(lo + i) }); n > 0 && n <= hi {
		at := n - 1
		if hint, ok := flowHints[problem]; ok {
			// The bracket left open where the search ends, else the one
			// around the place found, whose entries miss a comma.
			open := openBracket(c.data[:hi], hint.open, hint.close)
			if open < 0 || open >= n {
				open = openBracket(c.data[:n], hint.open, hint.close)
			}
			if open >= 0 {
				at = open
			}
		}
		pos.Line, pos.Column = lineColumn(c.data, at)
		pos.Line += c.line - 1
	}
	return &FieldError{Position: pos, Message: "malformed YAML: " + problem + flowHints[problem].text}
}

// openBracket returns the offset of the last bracket open in data that is
// not closed in it, or -1.
func openBracket(data []byte, open, close byte) int {
	depth := 0
	for i := len(data) - 1; i >= 0; i-- {
		switch data[i] {
		case close:
			depth++
		case open:
			if depth == 0 {
				return i
			}
			depth--
		}
	}
	return -1
}

// flowHints say what to do about the problems of flow collections. Any
// prefix of an unfinished { or [ fails alike, so the place found is only
// somewhere inside the collection: it is reported at its opening bracket,
// which misses its closing one, or whose entries miss a comma.
var flowHints = map[string]struct {
	open, close byte
	text        string
}{
	"did not find expected ',' or '}'": {'{', '}', "; this { is not closed, or its entries miss a comma"},
	"did not find expected ',' or ']'": {'[', ']', "; this [ is not closed, or its entries miss a comma"},
}

// yamlProblem splits a yaml.v3 error into the line it names (0 when none)
// and its message without the "yaml: line N:" prefix.
func yamlProblem(err error) (int, string) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, problem, ok := strings.Cut(rest, ": "); ok {
			if line, err := strconv.Atoi(num); err == nil {
				return line, problem
			}
		}
	}
	return 0, msg
}

// lineStart returns the offset of the one-based line in data, or len(data)
// when data has fewer lines.
func lineStart(data []byte, line int) int {
	off := 0
	for ; line > 1; line-- {
		i := bytes.IndexByte(data[off:], '\n')
		if i < 0 {
			return len(data)
		}
		off += i + 1
	}
	return off
}

// lineColumn returns the one-based line and column, counted in characters,
// of the byte at offset in data.
func lineColumn(data []byte, offset int) (int, int) {
	before := data[:offset]
	start := bytes.LastIndexByte(before, '\n') + 1
	return bytes.Count(before, []byte("\n")) + 1, utf8.RuneCount(before[start:]) + 1
}

// sortErrors orders field errors by file and position, for stable output.
func sortErrors(errs []error) {
	sort.SliceStable(errs, func(i, j int) bool {
		a, aok := errs[i].(*FieldError)
		b, bok := errs[j].(*FieldError)
		if !aok || !bok {
			return aok
		}
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
}

// HoldsObjects reports whether data, JSON when isJSON and YAML otherwise,
// may hold Kubernetes objects: whether one of its documents is a mapping
// with an apiVersion or a kind key, or data cannot be parsed (so that its
// parse error is reported, never skipped). A file of which it is false, such
// as a CI workflow, a linter's settings or package.json, names no object
// at all; a manifest missing one of the two keys still holds objects, and
// its error is reported.
func HoldsObjects(data []byte, isJSON bool) bool {
	var docs []*yaml.Node
	if isJSON {
		var err error
		if docs, err = jsonDocuments("", data); err != nil {
			return true
		}
	} else {
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var doc yaml.Node
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return true
			}
			if len(doc.Content) > 0 {
				docs = append(docs, doc.Content[0])
			}
		}
	}
	for _, d := range docs {
		if d.Kind == yaml.MappingNode && (valueOf(d, "apiVersion") != nil || valueOf(d, "kind") != nil) {
			return true
		}
	}
	return false
}
