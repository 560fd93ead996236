package ptq

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// parseYAML parses the YAML subset config files use into JSON-like values:
// map[string]any, []any, string, bool, int64, float64 and nil. It is
// strict: whatever falls outside the subset is an error naming the line,
// never a guess.
//
// Accepted:
//   - block mappings (key: value, key: followed by a more indented block,
//     or by a sequence at the key's own indentation) and block sequences
//     ("- item", including "- key: value" items that continue as a mapping
//     on the following lines);
//   - single-line flow collections: [a, b] and {k: v, k2: [1, 2]};
//   - scalars: plain, 'single quoted' (a doubled quote is a quote) and "double quoted"
//     (JSON escapes); plain scalars are resolved as YAML 1.2's core
//     schema: null, ~ and an empty value are null; true/false (also True,
//     TRUE, ...) are booleans; decimal integers and floats are numbers;
//     .inf and .nan are refused; everything else is a string;
//   - comments (# at the start of a line or after a space), a leading
//     "---" and a final "...".
//
// Refused with an error: tabs in indentation, anchors and aliases (&, *),
// tags (!), block scalars (| and >), multi-line flow collections or
// quoted scalars, "?" complex keys, directives (%), several documents,
// duplicate keys, inconsistent indentation.
func parseYAML(src []byte) (any, error) {
	if !utf8.Valid(src) {
		return nil, fmt.Errorf("YAML: the file is not valid UTF-8")
	}
	p := &yamlParser{}
	if err := p.split(string(src)); err != nil {
		return nil, err
	}
	if len(p.lines) == 0 {
		return nil, fmt.Errorf("YAML: the document is empty")
	}
	v, i, err := p.block(0, p.lines[0].indent)
	if err != nil {
		return nil, err
	}
	if i < len(p.lines) {
		return nil, p.errf(i, "unexpected content (check the indentation)")
	}
	return v, nil
}

type yamlLine struct {
	num    int    // 1-based line number in the file
	indent int    // leading spaces
	text   string // content without indentation and comment
}

type yamlParser struct {
	lines []yamlLine
}

func (p *yamlParser) errf(i int, format string, args ...any) error {
	return fmt.Errorf("YAML line %d: %s", p.lines[i].num, fmt.Sprintf(format, args...))
}

// split cuts the source into non-blank lines without comments.
func (p *yamlParser) split(src string) error {
	raw := strings.Split(strings.ReplaceAll(src, "\r\n", "\n"), "\n")
	started, ended := false, false
	for n, l := range raw {
		num := n + 1
		ind := 0
		for ind < len(l) && l[ind] == ' ' {
			ind++
		}
		rest := l[ind:]
		if strings.HasPrefix(rest, "\t") {
			return fmt.Errorf("YAML line %d: tab in indentation (use spaces)", num)
		}
		text, err := stripComment(rest)
		if err != nil {
			return fmt.Errorf("YAML line %d: %v", num, err)
		}
		text = strings.TrimRight(text, " \t")
		if text == "" {
			continue
		}
		if ended {
			return fmt.Errorf("YAML line %d: content after the end of the document (...)", num)
		}
		if ind == 0 && (text == "---" || strings.HasPrefix(text, "--- ")) {
			if started || len(p.lines) > 0 {
				return fmt.Errorf("YAML line %d: only one document is supported", num)
			}
			started = true
			if t := strings.TrimSpace(text[3:]); t != "" {
				return fmt.Errorf("YAML line %d: content after \"---\" is not supported", num)
			}
			continue
		}
		if ind == 0 && text == "..." {
			ended = true
			continue
		}
		if strings.HasPrefix(text, "%") {
			return fmt.Errorf("YAML line %d: directives (%%) are not supported", num)
		}
		p.lines = append(p.lines, yamlLine{num: num, indent: ind, text: text})
	}
	return nil
}

// stripComment removes a comment: # at the start or after whitespace,
// outside quotes.
func stripComment(s string) (string, error) {
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote == '"':
			if c == '\\' {
				i++
			} else if c == '"' {
				quote = 0
			}
		case quote == '\'':
			if c == '\'' {
				if i+1 < len(s) && s[i+1] == '\'' {
					i++
				} else {
					quote = 0
				}
			}
		case c == '#' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t'):
			return s[:i], nil
		case (c == '"' || c == '\'') && quoteStart(s, i):
			quote = c
		}
	}
	return s, nil
}

// quoteStart reports whether a quote at s[i] opens a quoted scalar: at
// the start of the text or after a space, '-', ':', '[', '{' or ','.
// (A quote inside a plain scalar, as in it's, is a character.)
func quoteStart(s string, i int) bool {
	if i == 0 {
		return true
	}
	switch s[i-1] {
	case ' ', '\t', '[', '{', ',':
		return true
	}
	return false
}

// isSeqItem reports whether a line is a block sequence item.
func isSeqItem(t string) bool { return t == "-" || strings.HasPrefix(t, "- ") }

// block parses the block starting at line i with the given indentation.
func (p *yamlParser) block(i, indent int) (any, int, error) {
	l := p.lines[i]
	if l.indent != indent {
		return nil, i, p.errf(i, "bad indentation")
	}
	if isSeqItem(l.text) {
		return p.sequence(i, indent)
	}
	if _, _, ok, err := p.splitKey(i, l.text); err != nil {
		return nil, i, err
	} else if ok {
		return p.mapping(i, indent)
	}
	v, err := p.inline(i, l.text)
	if err != nil {
		return nil, i, err
	}
	if i+1 < len(p.lines) && p.lines[i+1].indent > indent {
		return nil, i, p.errf(i+1, "multi-line scalars are not supported")
	}
	return v, i + 1, nil
}

// mapping parses a block mapping whose keys sit at indent.
func (p *yamlParser) mapping(i, indent int) (any, int, error) {
	m := map[string]any{}
	for i < len(p.lines) {
		l := p.lines[i]
		if l.indent < indent {
			break
		}
		if l.indent > indent {
			return nil, i, p.errf(i, "unexpected indentation")
		}
		if isSeqItem(l.text) {
			return nil, i, p.errf(i, "a sequence item where a mapping key was expected")
		}
		key, rest, ok, err := p.splitKey(i, l.text)
		if err != nil {
			return nil, i, err
		}
		if !ok {
			return nil, i, p.errf(i, "expected \"key: value\"")
		}
		if _, dup := m[key]; dup {
			return nil, i, p.errf(i, "duplicate key %q", key)
		}
		var v any
		switch {
		case rest != "":
			if v, err = p.inline(i, rest); err != nil {
				return nil, i, err
			}
			i++
			if i < len(p.lines) && p.lines[i].indent > indent {
				return nil, i, p.errf(i, "unexpected indentation (a value was already given on line %d)", l.num)
			}
		case i+1 < len(p.lines) && p.lines[i+1].indent > indent:
			if v, i, err = p.block(i+1, p.lines[i+1].indent); err != nil {
				return nil, i, err
			}
		case i+1 < len(p.lines) && p.lines[i+1].indent == indent && isSeqItem(p.lines[i+1].text):
			if v, i, err = p.sequence(i+1, indent); err != nil {
				return nil, i, err
			}
		default:
			i++ // empty value: null
		}
		m[key] = v
	}
	return m, i, nil
}

// sequence parses a block sequence whose dashes sit at indent.
func (p *yamlParser) sequence(i, indent int) (any, int, error) {
	s := []any{}
	for i < len(p.lines) {
		l := p.lines[i]
		if l.indent < indent || (l.indent == indent && !isSeqItem(l.text)) {
			break
		}
		if l.indent > indent {
			return nil, i, p.errf(i, "unexpected indentation")
		}
		rest := strings.TrimLeft(l.text[1:], " ")
		if rest == "" {
			if i+1 < len(p.lines) && p.lines[i+1].indent > indent {
				v, next, err := p.block(i+1, p.lines[i+1].indent)
				if err != nil {
					return nil, next, err
				}
				s = append(s, v)
				i = next
			} else {
				s = append(s, nil)
				i++
			}
			continue
		}
		// The item's content starts a block at the column after "- ":
		// continue it as a block whose first line is the rest of this one.
		col := indent + len(l.text) - len(rest)
		p.lines[i] = yamlLine{num: l.num, indent: col, text: rest}
		v, next, err := p.block(i, col)
		if err != nil {
			return nil, next, err
		}
		s = append(s, v)
		i = next
	}
	return s, i, nil
}

// splitKey splits "key: rest" (ok false when the text is not a mapping
// entry).
func (p *yamlParser) splitKey(i int, t string) (key, rest string, ok bool, err error) {
	switch t[0] {
	case '[', '{':
		return "", "", false, nil
	case '?':
		if t == "?" || strings.HasPrefix(t, "? ") {
			return "", "", false, p.errf(i, "complex keys (?) are not supported")
		}
	case '"', '\'':
		k, n, err := quoted(t)
		if err != nil {
			return "", "", false, p.errf(i, "%v", err)
		}
		after := t[n:]
		if !strings.HasPrefix(after, ":") {
			return "", "", false, nil
		}
		if len(after) > 1 && after[1] != ' ' {
			return "", "", false, p.errf(i, "expected a space after ':'")
		}
		return k, strings.TrimSpace(after[1:]), true, nil
	}
	for j := 0; j < len(t); j++ {
		if t[j] == ':' && (j+1 == len(t) || t[j+1] == ' ') {
			key = strings.TrimRight(t[:j], " ")
			if err := checkPlain(key); err != nil {
				return "", "", false, p.errf(i, "key %q: %v", key, err)
			}
			return key, strings.TrimSpace(t[j+1:]), true, nil
		}
	}
	return "", "", false, nil
}

// inline parses a value written on one line: a flow collection, a quoted
// scalar or a plain scalar.
func (p *yamlParser) inline(i int, t string) (any, error) {
	switch t[0] {
	case '[', '{':
		f := &flowParser{s: t}
		v, err := f.value()
		if err == nil {
			f.space()
			if f.pos < len(f.s) {
				err = fmt.Errorf("unexpected %q after the flow collection", f.s[f.pos:])
			}
		}
		if err != nil {
			return nil, p.errf(i, "%v", err)
		}
		return v, nil
	case '"', '\'':
		s, n, err := quoted(t)
		if err != nil {
			return nil, p.errf(i, "%v", err)
		}
		if n != len(t) {
			return nil, p.errf(i, "unexpected %q after the quoted string", t[n:])
		}
		return s, nil
	}
	if j := strings.Index(t, ": "); j >= 0 || strings.HasSuffix(t, ":") {
		return nil, p.errf(i, "a mapping is not allowed here (quote the value if ':' is part of it)")
	}
	if err := checkPlain(t); err != nil {
		return nil, p.errf(i, "%v", err)
	}
	v, err := plainScalar(t)
	if err != nil {
		return nil, p.errf(i, "%v", err)
	}
	return v, nil
}

// checkPlain refuses plain scalars that start with a YAML indicator this
// subset does not support.
func checkPlain(t string) error {
	if t == "" {
		return fmt.Errorf("empty key")
	}
	switch t[0] {
	case '&', '*':
		return fmt.Errorf("anchors and aliases (&, *) are not supported")
	case '!':
		return fmt.Errorf("tags (!) are not supported")
	case '|', '>':
		return fmt.Errorf("block scalars (| and >) are not supported; write the value on one line")
	case '@', '`', '%':
		return fmt.Errorf("a plain value cannot start with %q; quote it", t[0])
	case '"', '\'':
		return fmt.Errorf("unterminated quoted string")
	case ']', '}', ',':
		return fmt.Errorf("unexpected %q", t[0])
	}
	if strings.HasPrefix(t, "- ") || t == "-" {
		return fmt.Errorf("a sequence item is not allowed here")
	}
	return nil
}

// plainScalar resolves a plain scalar with YAML 1.2's core schema.
func plainScalar(t string) (any, error) {
	switch t {
	case "~", "null", "Null", "NULL":
		return nil, nil
	case "true", "True", "TRUE":
		return true, nil
	case "false", "False", "FALSE":
		return false, nil
	}
	lower := strings.ToLower(strings.TrimLeft(t, "+-"))
	if lower == ".inf" || lower == ".nan" {
		return nil, fmt.Errorf("%s is not supported", t)
	}
	if isYAMLInt(t) {
		v, err := strconv.ParseInt(t, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("integer %s out of range", t)
		}
		return v, nil
	}
	if isYAMLFloat(t) {
		v, err := strconv.ParseFloat(t, 64)
		if err != nil || math.IsInf(v, 0) {
			return nil, fmt.Errorf("number %s out of range", t)
		}
		return v, nil
	}
	return t, nil
}

// isYAMLInt matches [-+]?[0-9]+.
func isYAMLInt(t string) bool {
	t = strings.TrimPrefix(strings.TrimPrefix(t, "-"), "+")
	if t == "" {
		return false
	}
	for i := 0; i < len(t); i++ {
		if t[i] < '0' || t[i] > '9' {
			return false
		}
	}
	return true
}

// isYAMLFloat matches [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?.
func isYAMLFloat(t string) bool {
	if t != "" && (t[0] == '-' || t[0] == '+') {
		t = t[1:]
	}
	digits := func(s string) int {
		n := 0
		for n < len(s) && s[n] >= '0' && s[n] <= '9' {
			n++
		}
		return n
	}
	n := digits(t)
	t = t[n:]
	if strings.HasPrefix(t, ".") {
		m := digits(t[1:])
		if n == 0 && m == 0 {
			return false
		}
		t = t[1+m:]
	} else if n == 0 {
		return false
	}
	if t != "" && (t[0] == 'e' || t[0] == 'E') {
		t = t[1:]
		if t != "" && (t[0] == '-' || t[0] == '+') {
			t = t[1:]
		}
		m := digits(t)
		if m == 0 {
			return false
		}
		t = t[m:]
	}
	return t == ""
}

// quoted parses a quoted scalar at the start of t and returns it and the
// bytes consumed.
func quoted(t string) (string, int, error) {
	q := t[0]
	if q == '\'' {
		var b strings.Builder
		for i := 1; i < len(t); i++ {
			if t[i] == '\'' {
				if i+1 < len(t) && t[i+1] == '\'' {
					b.WriteByte('\'')
					i++
					continue
				}
				return b.String(), i + 1, nil
			}
			b.WriteByte(t[i])
		}
		return "", 0, fmt.Errorf("unterminated quoted string (multi-line strings are not supported)")
	}
	for i := 1; i < len(t); i++ {
		switch t[i] {
		case '\\':
			i++
		case '"':
			s, err := strconv.Unquote(t[:i+1])
			if err != nil {
				return "", 0, fmt.Errorf("bad escape in %s", t[:i+1])
			}
			return s, i + 1, nil
		}
	}
	return "", 0, fmt.Errorf("unterminated quoted string (multi-line strings are not supported)")
}

// flowParser parses a single-line flow collection.
type flowParser struct {
	s   string
	pos int
}

func (f *flowParser) space() {
	for f.pos < len(f.s) && f.s[f.pos] == ' ' {
		f.pos++
	}
}

func (f *flowParser) value() (any, error) {
	f.space()
	if f.pos >= len(f.s) {
		return nil, fmt.Errorf("unterminated flow collection (multi-line collections are not supported)")
	}
	switch f.s[f.pos] {
	case '[':
		f.pos++
		s := []any{}
		for {
			f.space()
			if f.pos < len(f.s) && f.s[f.pos] == ']' {
				f.pos++
				return s, nil
			}
			v, err := f.value()
			if err != nil {
				return nil, err
			}
			s = append(s, v)
			if err := f.sep(']'); err != nil {
				return nil, err
			}
		}
	case '{':
		f.pos++
		m := map[string]any{}
		for {
			f.space()
			if f.pos < len(f.s) && f.s[f.pos] == '}' {
				f.pos++
				return m, nil
			}
			k, err := f.scalar(true)
			if err != nil {
				return nil, err
			}
			key, ok := k.(string)
			if !ok {
				key = fmt.Sprint(k)
			}
			f.space()
			if f.pos >= len(f.s) || f.s[f.pos] != ':' {
				return nil, fmt.Errorf("expected ':' after key %q in a flow mapping", key)
			}
			f.pos++
			if _, dup := m[key]; dup {
				return nil, fmt.Errorf("duplicate key %q", key)
			}
			f.space()
			var v any
			if f.pos < len(f.s) && (f.s[f.pos] == ',' || f.s[f.pos] == '}') {
				v = nil
			} else if v, err = f.value(); err != nil {
				return nil, err
			}
			m[key] = v
			if err := f.sep('}'); err != nil {
				return nil, err
			}
		}
	}
	return f.scalar(false)
}

// sep consumes ", " or leaves the closing bracket for the caller.
func (f *flowParser) sep(end byte) error {
	f.space()
	if f.pos >= len(f.s) {
		return fmt.Errorf("unterminated flow collection (multi-line collections are not supported)")
	}
	switch f.s[f.pos] {
	case ',':
		f.pos++
		return nil
	case end:
		return nil
	}
	return fmt.Errorf("expected ',' or %q, found %q", end, f.s[f.pos:])
}

// scalar parses a quoted or plain scalar inside a flow collection; a plain
// key ends at ':', a plain value at ',', ']' or '}'.
func (f *flowParser) scalar(key bool) (any, error) {
	f.space()
	rest := f.s[f.pos:]
	if rest == "" {
		return nil, fmt.Errorf("unterminated flow collection")
	}
	if rest[0] == '"' || rest[0] == '\'' {
		s, n, err := quoted(rest)
		if err != nil {
			return nil, err
		}
		f.pos += n
		return s, nil
	}
	end := len(rest)
	for j := 0; j < len(rest); j++ {
		c := rest[j]
		if c == ',' || c == ']' || c == '}' || c == '[' || c == '{' || (c == ':' && (key || j+1 == len(rest) || rest[j+1] == ' ')) {
			end = j
			break
		}
	}
	t := strings.TrimRight(rest[:end], " ")
	if t == "" {
		return nil, fmt.Errorf("empty value in a flow collection")
	}
	if err := checkPlain(t); err != nil {
		return nil, err
	}
	f.pos += end
	if key {
		return t, nil
	}
	return plainScalar(t)
}
