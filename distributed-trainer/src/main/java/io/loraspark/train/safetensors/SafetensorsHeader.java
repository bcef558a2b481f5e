package io.loraspark.train.safetensors;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A parsed, fully validated safetensors header.
 *
 * @param metadata the {@code __metadata__} map (empty if absent), in header order
 * @param tensors every tensor, sorted by data offset (ties, only possible for empty tensors, keep
 *     header order); together they cover the data section exactly, with no gap or overlap
 * @param dataStart absolute file offset of the data section, {@code 8 + N}
 */
record SafetensorsHeader(Map<String, String> metadata, List<TensorInfo> tensors, long dataStart) {

  private static final String METADATA_KEY = "__metadata__";

  SafetensorsHeader {
    metadata = Collections.unmodifiableMap(new LinkedHashMap<>(metadata));
    tensors = List.copyOf(tensors);
  }

  /**
   * Reads and validates the header of an open file: lengths, strict UTF-8 JSON, every entry, and
   * that the tensors tile the data section exactly.
   *
   * @throws IllegalArgumentException naming {@code file} (and the tensor) on any malformed input
   * @throws UncheckedIOException if reading fails
   */
  static SafetensorsHeader read(Path file, FileChannel channel) {
    try {
      long size = channel.size();
      if (size < 8) {
        throw bad(
            file, "file is " + size + " bytes; a safetensors file starts with an 8-byte length");
      }
      long n = readFully(file, channel, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
      if (n < 0 || n > StrictJson.MAX_HEADER_BYTES) {
        throw bad(
            file,
            "header length "
                + Long.toUnsignedString(n)
                + " exceeds the safetensors limit of "
                + StrictJson.MAX_HEADER_BYTES
                + " bytes");
      }
      if (n > size - 8) {
        throw bad(
            file,
            String.format(
                "header length %d is larger than the %d bytes after the 8-byte prefix"
                    + " (file is %d bytes; truncated?)",
                n, size - 8, size));
      }
      if (n == 0) {
        throw bad(file, "header length is 0; expected a JSON object of at least 2 bytes");
      }
      byte[] json = readFully(file, channel, 8, (int) n).array();
      ObjectNode root = StrictJson.parseObject(file, "header", json);
      return fromJson(file, root, 8 + n, size - 8 - n);
    } catch (IOException e) {
      throw new UncheckedIOException(file + ": cannot read safetensors header: " + e, e);
    }
  }

  private static SafetensorsHeader fromJson(
      Path file, ObjectNode root, long dataStart, long dataLen) {
    Map<String, String> metadata = new LinkedHashMap<>();
    List<TensorInfo> tensors = new ArrayList<>();
    for (Map.Entry<String, JsonNode> e : root.properties()) {
      if (e.getKey().equals(METADATA_KEY)) {
        metadata.putAll(parseMetadata(file, e.getValue()));
      } else {
        tensors.add(parseEntry(file, e.getKey(), e.getValue(), dataLen));
      }
    }
    tensors.sort(Comparator.comparingLong(TensorInfo::begin).thenComparingLong(TensorInfo::end));
    checkContiguous(file, tensors, dataLen);
    return new SafetensorsHeader(metadata, tensors, dataStart);
  }

  private static Map<String, String> parseMetadata(Path file, JsonNode node) {
    if (!node.isObject()) {
      throw bad(
          file,
          "__metadata__ must be an object of string to string, got " + StrictJson.typeOf(node));
    }
    Map<String, String> out = new LinkedHashMap<>();
    for (Map.Entry<String, JsonNode> e : node.properties()) {
      if (!e.getValue().isTextual()) {
        throw bad(
            file,
            "__metadata__ value for key '"
                + e.getKey()
                + "' must be a string, got "
                + StrictJson.typeOf(e.getValue()));
      }
      out.put(e.getKey(), e.getValue().textValue());
    }
    return out;
  }

  private static TensorInfo parseEntry(Path file, String name, JsonNode node, long dataLen) {
    if (!node.isObject()) {
      throw badTensor(
          file,
          name,
          "entry must be an object with dtype, shape, data_offsets, got "
              + StrictJson.typeOf(node));
    }
    JsonNode dtypeNode = field(file, name, node, "dtype");
    if (!dtypeNode.isTextual()) {
      throw badTensor(
          file,
          name,
          "dtype must be a string such as \"F32\", got " + StrictJson.typeOf(dtypeNode));
    }
    DType dtype;
    try {
      dtype = DType.parse(dtypeNode.textValue());
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(file + ": tensor '" + name + "': " + e.getMessage(), e);
    }
    long[] shape = longs(file, name, field(file, name, node, "shape"), "shape", -1);
    long[] offsets = longs(file, name, field(file, name, node, "data_offsets"), "data_offsets", 2);
    long bytes;
    try {
      bytes = Math.multiplyExact(TensorInfo.numelOf(shape), dtype.bytes());
    } catch (ArithmeticException e) {
      throw new IllegalArgumentException(
          file
              + ": tensor '"
              + name
              + "': shape "
              + Arrays.toString(shape)
              + " of "
              + dtype
              + " has more than 2^63-1 bytes (numel*bytes overflows)",
          e);
    }
    long begin = offsets[0];
    long end = offsets[1];
    if (begin > end) {
      throw badTensor(file, name, "data_offsets [" + begin + ", " + end + "] have begin > end");
    }
    if (end > dataLen) {
      throw badTensor(
          file,
          name,
          String.format(
              "data_offsets [%d, %d] run past the end of the data section, which is %d bytes"
                  + " (valid offsets are 0..%d)",
              begin, end, dataLen, dataLen));
    }
    if (end - begin != bytes) {
      throw badTensor(
          file,
          name,
          String.format(
              "data_offsets [%d, %d] span %d bytes but %s %s needs numel*%d = %d bytes",
              begin, end, end - begin, dtype, Arrays.toString(shape), dtype.bytes(), bytes));
    }
    return new TensorInfo(name, dtype, shape, begin, end);
  }

  private static JsonNode field(Path file, String name, JsonNode entry, String key) {
    JsonNode v = entry.get(key);
    if (v == null) {
      throw badTensor(
          file, name, "missing \"" + key + "\"; each entry needs dtype, shape and data_offsets");
    }
    return v;
  }

  /** Non-negative integers of a JSON array; {@code expectedLength < 0} allows any length. */
  private static long[] longs(
      Path file, String name, JsonNode node, String key, int expectedLength) {
    if (!node.isArray() || (expectedLength >= 0 && node.size() != expectedLength)) {
      String want =
          expectedLength < 0
              ? "an array of integers"
              : "an array of " + expectedLength + " integers";
      throw badTensor(file, name, key + " must be " + want + ", got " + node);
    }
    long[] out = new long[node.size()];
    for (int i = 0; i < out.length; i++) {
      JsonNode v = node.get(i);
      if (!v.isIntegralNumber() || !v.canConvertToLong()) {
        throw badTensor(file, name, key + "[" + i + "] must be an integer in 0..2^63-1, got " + v);
      }
      out[i] = v.longValue();
      if (out[i] < 0) {
        throw badTensor(
            file,
            name,
            key + "[" + i + "] is " + out[i] + "; it must be >= 0 (" + key + " " + node + ")");
      }
    }
    return out;
  }

  /**
   * Tensors sorted by offset must start at 0, each begin where the previous ended, end at dataLen.
   */
  private static void checkContiguous(Path file, List<TensorInfo> sorted, long dataLen) {
    long expected = 0;
    TensorInfo prev = null;
    for (TensorInfo t : sorted) {
      if (t.begin() < expected) {
        throw bad(
            file,
            String.format(
                "tensors '%s' [%d, %d] and '%s' [%d, %d] overlap; each tensor must begin where the"
                    + " previous one ends",
                prev.name(), prev.begin(), prev.end(), t.name(), t.begin(), t.end()));
      }
      if (t.begin() > expected) {
        throw bad(
            file,
            String.format(
                "gap of %d unused bytes before tensor '%s' (data_offsets [%d, %d]); expected it to"
                    + " begin at %d (%s) - tensors must cover the data section contiguously",
                t.begin() - expected,
                t.name(),
                t.begin(),
                t.end(),
                expected,
                prev == null
                    ? "the start of the data section"
                    : "the end of '" + prev.name() + "'"));
      }
      expected = t.end();
      prev = t;
    }
    if (expected != dataLen) {
      throw bad(
          file,
          String.format(
              "the data section is %d bytes but the tensors cover only %d; %d trailing bytes belong"
                  + " to no tensor",
              dataLen, expected, dataLen - expected));
    }
  }

  /** Reads exactly {@code len} bytes at {@code pos} into a heap buffer (flipped for reading). */
  private static ByteBuffer readFully(Path file, FileChannel ch, long pos, int len)
      throws IOException {
    ByteBuffer buf = ByteBuffer.allocate(len);
    while (buf.hasRemaining()) {
      if (ch.read(buf, pos + buf.position()) < 0) {
        throw bad(file, "unexpected end of file at byte " + (pos + buf.position()));
      }
    }
    return buf.flip();
  }

  private static IllegalArgumentException bad(Path file, String msg) {
    return new IllegalArgumentException(file + ": " + msg);
  }

  private static IllegalArgumentException badTensor(Path file, String name, String msg) {
    return new IllegalArgumentException(file + ": tensor '" + name + "': " + msg);
  }
}
