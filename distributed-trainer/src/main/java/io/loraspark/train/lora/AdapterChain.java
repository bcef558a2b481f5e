package io.loraspark.train.lora;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.loraspark.train.io.AtomicFiles;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Optional;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * The frozen ancestors of an adapter, root first: the parent it names in {@value #FILE}, that
 * parent's parent, and so on. Each link is checked against the content hash the child recorded, so
 * a chain whose parent was retrained or replaced since is refused, naming both directories.
 *
 * <p>{@value #FILE} sits beside {@code adapter_config.json} (PEFT readers never open it) and holds
 * {@code {"parent": <path or URI>, "parent_sha256": <content hash>}} ({@link
 * AdapterParent#contentHash}). A directory without it is a root.
 *
 * @param nodes the ancestors, root first; empty for a root adapter
 */
public record AdapterChain(List<AdapterParent> nodes) implements java.io.Serializable {
  /** The file a child records its parent in. */
  public static final String FILE = "lora_spark_parent.json";

  /** Most ancestors a chain may have. */
  public static final int MAX_DEPTH = 8;

  private static final ObjectMapper JSON = new ObjectMapper();

  public AdapterChain {
    nodes = List.copyOf(nodes);
  }

  /** A root's chain: no ancestors. */
  public static final AdapterChain NONE = new AdapterChain(List.of());

  /**
   * {@code parent} and its recorded ancestors, root first, each checked against the hash its child
   * recorded ({@code parent} itself against its own).
   *
   * @throws IllegalArgumentException (one line) when a link changed, the chain has a cycle or more
   *     than {@value #MAX_DEPTH} nodes
   */
  public static AdapterChain above(AdapterParent parent) {
    String now = AdapterParent.contentHash(parent.location());
    if (!now.equals(parent.contentHash())) {
      throw new ParentChangedException(
          "parent "
              + parent.location()
              + " changed since the child was planned on it (sha256 "
              + parent.shortHash()
              + " → "
              + now.substring(0, 12)
              + "); plan the child again to train on its current content");
    }
    return climb(parent, null);
  }

  /**
   * The ancestors of the adapter in {@code dir} (empty for a root), checked like {@link #above}.
   *
   * @throws IllegalArgumentException (one line) when a recorded parent changed since, naming the
   *     adapter, the parent and both hashes
   */
  public static AdapterChain of(String dir) {
    AdapterChain chain = recorded(dir).map(p -> climb(p, dir)).orElse(NONE);
    java.util.function.Consumer<String> hook = onRead;
    if (hook != null) {
      hook.accept(dir);
    }
    return chain;
  }

  /**
   * Told the directory each time {@link #of} has read and verified a chain, or null; tests use it
   * to prove a load reads its chain once and to change a directory right after that read.
   */
  static volatile java.util.function.Consumer<String> onRead;

  /**
   * {@code node} and its recorded ancestors, root first: first the links by location (cycles and
   * depth), then each link's hash.
   *
   * @param child the adapter whose recorded parent {@code node} is (its hash is checked too), or
   *     null when the caller just took {@code node}'s hash
   */
  private static AdapterChain climb(AdapterParent node, String child) {
    List<String> seen = new ArrayList<>();
    if (child != null) {
      seen.add(canonical(child));
    }
    List<AdapterParent> up = new ArrayList<>();
    String below = child;
    for (AdapterParent n = node; n != null; n = recorded(n.location()).orElse(null)) {
      if (seen.contains(canonical(n.location()))) {
        throw new IllegalArgumentException(
            "adapter chain has a cycle: "
                + below
                + (n.location().equals(below)
                    ? " names itself as its parent"
                    : " names "
                        + n.location()
                        + " as its parent, which is already below it in the chain"));
      }
      if (up.size() == MAX_DEPTH) {
        throw new IllegalArgumentException(
            "adapter chain above "
                + node.location()
                + " is deeper than "
                + MAX_DEPTH
                + " parents (at "
                + n.location()
                + "); merge its upper part into one adapter first");
      }
      seen.add(canonical(n.location()));
      up.add(n);
      below = n.location();
    }
    for (int i = child == null ? 1 : 0; i < up.size(); i++) {
      verified(up.get(i), i == 0 ? child : up.get(i - 1).location());
    }
    Collections.reverse(up);
    return new AdapterChain(up);
  }

  /** How many ancestors. */
  public int depth() {
    return nodes.size();
  }

  /** The nearest ancestor, empty for a root. */
  public Optional<AdapterParent> parent() {
    return nodes.isEmpty() ? Optional.empty() : Optional.of(nodes.get(nodes.size() - 1));
  }

  /**
   * {@code recorded} if its directory still has the recorded content, else the one-line refusal.
   */
  private static AdapterParent verified(AdapterParent recorded, String child) {
    String now = AdapterParent.contentHash(recorded.location());
    if (!now.equals(recorded.contentHash())) {
      throw new ParentChangedException(
          "adapter "
              + child
              + " was trained on parent "
              + recorded.location()
              + " (sha256 "
              + recorded.shortHash()
              + ") but that directory now holds other content (sha256 "
              + now.substring(0, 12)
              + "); restore the parent or retrain the child");
    }
    return recorded;
  }

  /** A child whose recorded parent no longer has the recorded content. */
  public static final class ParentChangedException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    ParentChangedException(String message) {
      super(message);
    }
  }

  /**
   * The parent the adapter at {@code location} records, empty when it has no {@value #FILE}.
   *
   * @throws IllegalArgumentException naming the file when it is malformed
   */
  public static Optional<AdapterParent> recorded(String location) {
    Path file = new Path(location, FILE);
    JsonNode root;
    try (InputStream in = file.getFileSystem(new Configuration()).open(file)) {
      root = JSON.readTree(in);
    } catch (FileNotFoundException e) {
      return Optional.empty();
    } catch (IOException e) {
      throw new UncheckedIOException(file + ": cannot read it: " + e, e);
    }
    JsonNode p = root == null ? null : root.get("parent");
    JsonNode h = root == null ? null : root.get("parent_sha256");
    if (p == null || !p.isTextual() || h == null || !h.isTextual()) {
      throw new IllegalArgumentException(
          file + ": expected {\"parent\": <path or URI>, \"parent_sha256\": <64 hex digits>}");
    }
    return Optional.of(new AdapterParent(p.asText(), h.asText()));
  }

  /**
   * Writes {@value #FILE} into the local adapter directory {@code dir}: {@code parent} with its
   * hash.
   */
  public static void record(java.nio.file.Path dir, AdapterParent parent) {
    ObjectNode n = JSON.createObjectNode();
    n.put("parent", parent.location());
    n.put("parent_sha256", parent.contentHash());
    try {
      AtomicFiles.writeString(
          dir.resolve(FILE), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(n) + "\n");
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IllegalStateException("cannot render " + FILE + ": " + e, e);
    }
  }

  /** A location's identity for cycle detection: its absolute, normalised form. */
  private static String canonical(String location) {
    Path p = new Path(location);
    try {
      FileSystem fs = p.getFileSystem(new Configuration());
      return fs.makeQualified(p).toString();
    } catch (IOException e) {
      return location;
    }
  }
}
