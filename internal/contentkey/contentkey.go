package contentkey

import (
	"hash/maphash"
	"math"
	"math/bits"
	"math/rand/v2"
	"reflect"
	"runtime"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Key is a digest of content.
type Key uint64

var seed = maphash.MakeSeed()

// Kinds of value, mixed into their keys so that "1", 1 and true differ.
const (
	tagNil uint64 = iota + 1
	tagString
	tagInt
	tagFloat
	tagBool
	tagMap
	tagSlice
	tagOther
)

// Of returns the key of v, a value as encoding/json or unstructured
// decodes it: maps with string keys, slices, strings, numbers, booleans and
// nil. A map's key does not depend on its order of iteration.
func Of(v any) Key { return Key(of(v)) }

// Objects returns the key of objs in their order; a nil object counts.
func Objects(objs []*unstructured.Unstructured) Key { return Combine(Each(objs)...) }

// Each returns the key of every object of objs, computed on every core.
func Each(objs []*unstructured.Unstructured) []Key {
	keys := make([]Key, len(objs))
	one := func(i int) {
		if objs[i] == nil {
			keys[i] = Key(mix(tagNil))
			return
		}
		keys[i] = Key(of(objs[i].Object))
	}
	workers := min(runtime.GOMAXPROCS(0), len(objs)/256+1)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(objs); i += workers {
				one(i)
			}
		})
	}
	wg.Wait()
	return keys
}

// Bytes returns the key of b, for content already encoded.
func Bytes(b []byte) Key { return Key(mix(maphash.Bytes(seed, b) ^ tagOther)) }

// Combine returns a key of keys in their order.
func Combine(keys ...Key) Key {
	h := mix(tagSlice ^ uint64(len(keys)))
	for _, k := range keys {
		h = mix(h ^ uint64(k))
	}
	return Key(h)
}

func of(v any) uint64 {
	switch t := v.(type) {
	case nil:
		return mix(tagNil)
	case string:
		return mix(maphash.String(seed, t) ^ tagString)
	case bool:
		if t {
			return mix(tagBool<<1 | 1)
		}
		return mix(tagBool << 1)
	case int64:
		return mix(uint64(t)*0x9e3779b97f4a7c15 ^ tagInt)
	case int:
		return mix(uint64(t)*0x9e3779b97f4a7c15 ^ tagInt)
	case int32:
		return mix(uint64(t)*0x9e3779b97f4a7c15 ^ tagInt)
	case float64:
		return mix(math.Float64bits(t)*0x9e3779b97f4a7c15 ^ tagFloat)
	case map[string]any:
		// Entries are summed, so their order does not matter; each entry
		// mixes its key with its value, so a value moved to another key
		// changes the sum.
		var sum uint64
		for k, e := range t {
			sum += mix(maphash.String(seed, k) ^ bits.RotateLeft64(of(e), 29))
		}
		return mix(sum ^ mix(tagMap^uint64(len(t))))
	case []any:
		h := mix(tagSlice ^ uint64(len(t)))
		for _, e := range t {
			h = mix(h ^ of(e))
		}
		return h
	}
	// A type JSON does not decode to: a typed map a caller set, or a Go
	// struct such as a loaded spec.
	return value(reflect.ValueOf(v), 0)
}

// maxDepth bounds the walk of Go values; a deeper one (a cycle) matches
// nothing.
const maxDepth = 64

// value keys a Go value by what it holds, exported fields or not: structs
// by their fields in order, pointers and interfaces by what they point
// to, maps regardless of order. A function, channel or a value deeper
// than maxDepth matches nothing.
func value(v reflect.Value, depth int) uint64 {
	if depth > maxDepth {
		return rand.Uint64()
	}
	switch v.Kind() {
	case reflect.Invalid:
		return mix(tagNil)
	case reflect.String:
		return mix(maphash.String(seed, v.String()) ^ tagString)
	case reflect.Bool:
		if v.Bool() {
			return mix(tagBool<<1 | 1)
		}
		return mix(tagBool << 1)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return mix(uint64(v.Int())*0x9e3779b97f4a7c15 ^ tagInt)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return mix(v.Uint()*0x9e3779b97f4a7c15 ^ tagInt)
	case reflect.Float32, reflect.Float64:
		return mix(math.Float64bits(v.Float())*0x9e3779b97f4a7c15 ^ tagFloat)
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return mix(tagNil)
		}
		if v.Kind() == reflect.Interface && v.CanInterface() {
			return of(v.Interface())
		}
		return value(v.Elem(), depth+1)
	case reflect.Struct:
		h := mix(tagOther ^ uint64(v.NumField()))
		for i := range v.NumField() {
			h = mix(h ^ value(v.Field(i), depth+1))
		}
		return h
	case reflect.Slice, reflect.Array:
		h := mix(tagSlice ^ uint64(v.Len()))
		for i := range v.Len() {
			h = mix(h ^ value(v.Index(i), depth+1))
		}
		return h
	case reflect.Map:
		var sum uint64
		for it := v.MapRange(); it.Next(); {
			sum += mix(value(it.Key(), depth+1) ^ bits.RotateLeft64(value(it.Value(), depth+1), 29))
		}
		return mix(sum ^ mix(tagMap^uint64(v.Len())))
	}
	return rand.Uint64()
}

// mix is splitmix64's finalizer: every input bit flips about half of the
// output bits.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
