package io.loraspark.train.safetensors;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A checkpoint directory: model.safetensors, or model.safetensors.index.json + shards. All shards
 * are opened and validated at open, and the index is checked against them: every shard it names
 * exists next to it, every tensor is in the shard it names, no tensor is in two shards, and no
 * shard holds a tensor the index does not list. Thread-safe reads.
 */
public final class SafetensorsCheckpoint implements AutoCloseable {

  /** The single-file checkpoint name inside a directory. */
  public static final String SINGLE_FILE = "model.safetensors";

  /** The shard index name inside a directory. */
  public static final String INDEX_FILE = "model.safetensors.index.json";

  private final Path path;
  private final List<SafetensorsFile> files;
  private final Map<String, SafetensorsFile> owners;
  private final List<String> names;
  private final Map<String, String> metadata;

  private SafetensorsCheckpoint(
      Path path, List<SafetensorsFile> files, List<String> names, Map<String, String> metadata) {
    this.path = path;
    this.files = List.copyOf(files);
    this.names = List.copyOf(names);
    this.metadata = Collections.unmodifiableMap(new LinkedHashMap<>(metadata));
    Map<String, SafetensorsFile> byName = new LinkedHashMap<>();
    for (SafetensorsFile f : files) {
      for (String n : f.names()) {
        byName.put(n, f);
      }
    }
    this.owners = Collections.unmodifiableMap(byName);
  }

  /**
   * Opens a checkpoint. {@code dirOrFile} is a directory holding model.safetensors (preferred, as
   * transformers does) or model.safetensors.index.json; or a path to a single .safetensors file; or
   * a path to a .safetensors.index.json.
   *
   * @throws IllegalArgumentException naming the offending file on a missing or malformed
   *     checkpoint, index or shard
   * @throws UncheckedIOException naming the file on I/O failure
   */
  public static SafetensorsCheckpoint open(Path dirOrFile) {
    if (Files.isDirectory(dirOrFile)) {
      Path single = dirOrFile.resolve(SINGLE_FILE);
      Path index = dirOrFile.resolve(INDEX_FILE);
      if (Files.isRegularFile(single)) {
        return single(single);
      }
      if (Files.isRegularFile(index)) {
        return ShardIndex.read(index).open();
      }
      throw new IllegalArgumentException(
          dirOrFile
              + ": not a safetensors checkpoint; expected "
              + SINGLE_FILE
              + " or "
              + INDEX_FILE
              + " in it");
    }
    if (Files.isRegularFile(dirOrFile)) {
      return dirOrFile.getFileName().toString().endsWith(".index.json")
          ? ShardIndex.read(dirOrFile).open()
          : single(dirOrFile);
    }
    throw new IllegalArgumentException(
        dirOrFile
            + ": does not exist; expected a checkpoint directory, a .safetensors file or an index");
  }

  private static SafetensorsCheckpoint single(Path file) {
    SafetensorsFile f = SafetensorsFile.open(file);
    return new SafetensorsCheckpoint(file, List.of(f), f.names(), f.metadata());
  }

  /** The path opened: the single file or the index. */
  public Path path() {
    return path;
  }

  /**
   * The single file's {@code __metadata__}, or the index's "metadata" with non-string values as
   * their JSON text (e.g. total_size).
   */
  public Map<String, String> metadata() {
    return metadata;
  }

  /** Tensor names: the file order of a single file, or the weight_map order of an index. */
  public List<String> names() {
    return names;
  }

  /** Whether any shard holds {@code name}. */
  public boolean contains(String name) {
    return owners.containsKey(name);
  }

  /**
   * The tensor's dtype, shape and offsets within its own shard.
   *
   * @throws IllegalArgumentException naming the checkpoint if absent
   */
  public TensorInfo info(String name) {
    return owner(name).info(name);
  }

  /** Reads a tensor as float32; see {@link SafetensorsFile#readFloats(String)}. */
  public float[] readFloats(String name) {
    return owner(name).readFloats(name);
  }

  private SafetensorsFile owner(String name) {
    SafetensorsFile f = owners.get(name);
    if (f == null) {
      throw new IllegalArgumentException(
          path + ": no tensor '" + name + "' (the checkpoint has " + owners.size() + " tensors)");
    }
    return f;
  }

  /** Closes every shard; if several fail, the first failure carries the rest as suppressed. */
  @Override
  public void close() {
    closeAll(files, null);
  }

  /** Closes {@code files}, adding failures to {@code primary}, or throwing them if it is null. */
  static void closeAll(List<SafetensorsFile> files, Throwable primary) {
    RuntimeException first = null;
    for (SafetensorsFile f : files) {
      try {
        f.close();
      } catch (RuntimeException e) {
        if (primary != null) {
          primary.addSuppressed(e);
        } else if (first == null) {
          first = e;
        } else {
          first.addSuppressed(e);
        }
      }
    }
    if (first != null) {
      throw first;
    }
  }

  /**
   * A parsed model.safetensors.index.json.
   *
   * @param index the index file
   * @param weightMap tensor name to shard file name, in index order
   * @param metadata the index's "metadata", values as text
   */
  record ShardIndex(Path index, Map<String, String> weightMap, Map<String, String> metadata) {

    /** Reads and validates the index JSON and that every shard it names exists beside it. */
    static ShardIndex read(Path index) {
      ObjectNode root = StrictJson.parseObject(index, "index", readIndexBytes(index));
      JsonNode map = root.get("weight_map");
      if (map == null || !map.isObject() || map.isEmpty()) {
        throw new IllegalArgumentException(
            index
                + ": \"weight_map\" must be a non-empty object of tensor name to shard file name");
      }
      Map<String, String> weightMap = new LinkedHashMap<>();
      Path dir = index.toAbsolutePath().getParent();
      for (Map.Entry<String, JsonNode> e : map.properties()) {
        String shard = e.getValue().isTextual() ? e.getValue().textValue() : null;
        if (shard == null
            || shard.isEmpty()
            || shard.contains("/")
            || shard.contains("\\")
            || shard.equals(".")
            || shard.equals("..")) {
          throw new IllegalArgumentException(
              index
                  + ": weight_map entry for tensor '"
                  + e.getKey()
                  + "' must be a shard file name in the same directory, got "
                  + e.getValue());
        }
        if (!Files.isRegularFile(dir.resolve(shard))) {
          throw new IllegalArgumentException(
              index
                  + ": shard file '"
                  + shard
                  + "' (for tensor '"
                  + e.getKey()
                  + "') does not exist in "
                  + dir);
        }
        weightMap.put(e.getKey(), shard);
      }
      return new ShardIndex(index, weightMap, metadataOf(index, root.get("metadata")));
    }

    private static byte[] readIndexBytes(Path index) {
      try {
        long size = Files.size(index);
        if (size > StrictJson.MAX_HEADER_BYTES) {
          throw new IllegalArgumentException(
              index
                  + ": index is "
                  + size
                  + " bytes; at most "
                  + StrictJson.MAX_HEADER_BYTES
                  + " are read");
        }
        return Files.readAllBytes(index);
      } catch (IOException e) {
        throw new UncheckedIOException(index + ": cannot read index: " + e, e);
      }
    }

    private static Map<String, String> metadataOf(Path index, JsonNode node) {
      Map<String, String> out = new LinkedHashMap<>();
      if (node == null || node.isNull()) {
        return out;
      }
      if (!node.isObject()) {
        throw new IllegalArgumentException(
            index + ": \"metadata\" must be an object, got " + StrictJson.typeOf(node));
      }
      for (Map.Entry<String, JsonNode> e : node.properties()) {
        out.put(
            e.getKey(),
            e.getValue().isTextual() ? e.getValue().textValue() : e.getValue().toString());
      }
      return out;
    }

    /** Opens every shard and checks it against the weight map; closes them all on failure. */
    SafetensorsCheckpoint open() {
      Path dir = index.toAbsolutePath().getParent();
      Map<String, SafetensorsFile> shards = new LinkedHashMap<>();
      try {
        for (String shard : weightMap.values()) {
          if (!shards.containsKey(shard)) {
            shards.put(shard, SafetensorsFile.open(dir.resolve(shard)));
          }
        }
        check(shards);
        return new SafetensorsCheckpoint(
            index, new ArrayList<>(shards.values()), new ArrayList<>(weightMap.keySet()), metadata);
      } catch (RuntimeException | Error e) {
        closeAll(new ArrayList<>(shards.values()), e);
        throw e;
      }
    }

    private void check(Map<String, SafetensorsFile> shards) {
      Map<String, String> seen = new LinkedHashMap<>();
      for (Map.Entry<String, SafetensorsFile> s : shards.entrySet()) {
        for (String name : s.getValue().names()) {
          String other = seen.putIfAbsent(name, s.getKey());
          if (other != null) {
            throw new IllegalArgumentException(
                index
                    + ": tensor '"
                    + name
                    + "' is in both shard '"
                    + other
                    + "' and shard '"
                    + s.getKey()
                    + "'; names must be unique across shards");
          }
          if (!weightMap.containsKey(name)) {
            throw new IllegalArgumentException(
                index
                    + ": shard '"
                    + s.getKey()
                    + "' holds tensor '"
                    + name
                    + "', which the weight_map does not list");
          }
        }
      }
      for (Map.Entry<String, String> e : weightMap.entrySet()) {
        if (!e.getValue().equals(seen.get(e.getKey()))) {
          throw new IllegalArgumentException(
              index
                  + ": weight_map puts tensor '"
                  + e.getKey()
                  + "' in shard '"
                  + e.getValue()
                  + "', but that shard has no such tensor"
                  + (seen.containsKey(e.getKey())
                      ? " (it is in '" + seen.get(e.getKey()) + "')"
                      : ""));
        }
      }
    }
  }
}
