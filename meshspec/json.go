package meshspec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// maxJSONDepth bounds how deeply a JSON manifest may nest, as encoding/json
// bounds it.
const maxJSONDepth = 10000

// LoadJSON reads the JSON manifests of one file: one or more JSON values,
// each an object (a manifest, or a List of them, as kubectl reads a .json
// file). The objects are checked exactly as Load checks YAML documents,
// and errors name file:line:column.
//
// JSON is read with encoding/json, not as YAML: YAML parsers refuse JSON
// escapes such as "\/" and surrogate pairs that every JSON encoder writes.
func LoadJSON(file string, data []byte) (*Set, error) {
	if len(data) > MaxFileSize {
		return nil, &FieldError{Position: Position{File: file}, Message: fmt.Sprintf("file is %d bytes, more than the %d meshcd reads; split it", len(data), MaxFileSize)}
	}
	docs, err := jsonDocuments(file, data)
	if err != nil {
		return nil, err
	}
	set := NewSet()
	budget := MaxNodes
	var errs []error
	for _, doc := range docs {
		if err := loadDocument(set, file, doc, &budget); err != nil {
			errs = append(errs, err)
		}
		if budget < 0 {
			break
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return set, nil
}

// jsonDocuments parses the JSON values of data into YAML nodes carrying
// their line and column, so that one walker checks both formats.
func jsonDocuments(file string, data []byte) ([]*yaml.Node, error) {
	// A byte order mark, as some Windows editors write, is no JSON; an
	// editor counts no column for it.
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	r := &jsonReader{file: file, data: data, dec: json.NewDecoder(bytes.NewReader(data))}
	r.dec.UseNumber()
	var docs []*yaml.Node
	for {
		n, err := r.value(0)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		docs = append(docs, n)
	}
}

// jsonReader turns the tokens of a JSON stream into YAML nodes.
type jsonReader struct {
	file string
	data []byte
	dec  *json.Decoder
	// lines are the offsets at which the lines of data start.
	lines []int
	// last is the place at returned last.
	last struct{ line, offset, column int }
}

// at returns the line and column of the first token at or after offset,
// skipping the whitespace and separators encoding/json leaves before it.
func (r *jsonReader) at(offset int64) (line, column int) {
	if r.lines == nil {
		r.lines = []int{0}
		for i, c := range r.data {
			if c == '\n' {
				r.lines = append(r.lines, i+1)
			}
		}
	}
	i := int(min(max(offset, 0), int64(len(r.data))))
	for i < len(r.data) && bytes.IndexByte([]byte(" \t\r\n,:"), r.data[i]) >= 0 {
		i++
	}
	line, _ = slices.BinarySearch(r.lines, i+1) // the lines starting at or before i
	from, column := r.lines[line-1], 1
	if r.last.line == line && r.last.offset <= i {
		// Tokens come in order: count on from the last one, so that a
		// long line (minified JSON) is not counted again for each token.
		from, column = r.last.offset, r.last.column
	}
	column += utf8.RuneCount(r.data[from:i])
	r.last.line, r.last.offset, r.last.column = line, i, column
	return line, column
}

// fail turns a decoding error inside a value into a FieldError at its
// place in the file.
func (r *jsonReader) fail(err error, offset int64) error {
	var syntax *json.SyntaxError
	switch {
	case errors.As(err, &syntax):
		offset = max(syntax.Offset-1, 0)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		err, offset = io.ErrUnexpectedEOF, int64(len(r.data))
	}
	line, col := r.at(offset)
	return &FieldError{Position: Position{File: r.file, Line: line, Column: col}, Message: "malformed JSON: " + err.Error()}
}

// value reads one JSON value; io.EOF when the stream has ended between values.
func (r *jsonReader) value(depth int) (*yaml.Node, error) {
	start := r.dec.InputOffset()
	tok, err := r.dec.Token()
	if err != nil {
		if errors.Is(err, io.EOF) && depth == 0 {
			return nil, io.EOF
		}
		return nil, r.fail(err, start)
	}
	line, col := r.at(start)
	n := &yaml.Node{Line: line, Column: col}
	switch t := tok.(type) {
	case json.Delim:
		if depth >= maxJSONDepth {
			return nil, &FieldError{Position: Position{File: r.file, Line: line, Column: col}, Message: fmt.Sprintf("JSON nests deeper than %d levels; meshcd refuses it", maxJSONDepth)}
		}
		n.Kind, n.Tag, n.Style = yaml.SequenceNode, "!!seq", yaml.FlowStyle
		if t == '{' {
			n.Kind, n.Tag = yaml.MappingNode, "!!map"
		}
		for r.dec.More() {
			if n.Kind == yaml.MappingNode {
				key, err := r.value(depth + 1)
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, key)
			}
			v, err := r.value(depth + 1)
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, v)
		}
		end := r.dec.InputOffset()
		if _, err := r.dec.Token(); err != nil {
			return nil, r.fail(err, end)
		}
	case string:
		n.Kind, n.Tag, n.Value, n.Style = yaml.ScalarNode, "!!str", t, yaml.DoubleQuotedStyle
	case json.Number:
		n.Kind, n.Tag, n.Value = yaml.ScalarNode, "!!float", t.String()
		if _, err := strconv.ParseInt(n.Value, 10, 64); err == nil {
			n.Tag = "!!int"
		}
	case bool:
		n.Kind, n.Tag, n.Value = yaml.ScalarNode, "!!bool", strconv.FormatBool(t)
	case nil:
		n.Kind, n.Tag, n.Value = yaml.ScalarNode, "!!null", "null"
	}
	return n, nil
}
