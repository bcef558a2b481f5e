package io.loraspark.train.cache;

import java.io.UncheckedIOException;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.file.FileSystemNotFoundException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Pattern;
import org.apache.hadoop.conf.Configuration;

/**
 * Turns what a user names into a local adapter directory to load from, refusing anything outside
 * what the caller allowed. Three forms:
 *
 * <ol>
 *   <li>{@link #resolveName}: an adapter <em>name</em>, a relative directory path under the
 *       configured root; refused if empty, absolute, with a {@code .} or {@code ..} segment, or if
 *       its real path ({@link Path#toRealPath}, symlinks followed) is not strictly inside the root.
 *   <li>{@link #resolve} with a plain path or a {@code file:} URI: accepted only when its real
 *       location is inside one of the {@linkplain Builder#allowedRoots allowed roots}, or anywhere
 *       when the caller set {@link Builder#allowAnyLocalPath} (the CLI). No allowed roots and no
 *       flag means loading by path is off: only names work.
 *   <li>{@link #resolve} with any other URI ({@code hdfs:}, {@code s3a:}, ...): only if its scheme
 *       was {@linkplain Builder#allowRemoteSchemes allowed}; the adapter files are copied through
 *       Hadoop's {@code FileSystem} into a temporary local directory that closing the returned
 *       {@link LocalAdapterDir} deletes.
 * </ol>
 *
 * A string is a URI when it starts with {@code scheme:/}; anything else is a path. Every refusal is
 * an {@link IllegalArgumentException} with one line naming the name or path, the root, and what
 * would be valid. Immutable and thread-safe once built.
 */
public final class AdapterSource {

  private static final String FILE_SCHEME = "file";
  private static final Pattern URI_PREFIX = Pattern.compile("^[A-Za-z][A-Za-z0-9+.-]*:/.*");

  /** How many names under the root a "not found" message lists. */
  private static final int NAMES_LISTED = 10;

  private final Path root; // real path
  private final List<Path> allowedRoots; // real paths
  private final boolean allowAnyLocalPath;
  private final Set<String> remoteSchemes; // lower case
  private final Path tempDir;
  private final Configuration givenConf;
  private Configuration conf; // guarded by this; created on first remote use

  private AdapterSource(Builder b) {
    this.root = LocalPaths.realDirectory(b.root, "adapter root");
    List<Path> roots = new ArrayList<>();
    for (Path r : b.allowedRoots) {
      roots.add(LocalPaths.realDirectory(r, "allowed adapter root"));
    }
    this.allowedRoots = List.copyOf(roots);
    this.allowAnyLocalPath = b.allowAnyLocalPath;
    this.remoteSchemes = Set.copyOf(b.remoteSchemes);
    this.tempDir =
        LocalPaths.realDirectory(
            b.tempDir != null ? b.tempDir : Path.of(System.getProperty("java.io.tmpdir")),
            "temporary directory");
    this.givenConf = b.conf;
  }

  /** A source that loads only adapter names under {@code root} (no paths, no URIs). */
  public static AdapterSource namesUnder(Path root) {
    return builder(root).build();
  }

  /**
   * Starts a source whose adapter names resolve under {@code root}.
   *
   * @param root an existing directory; adapter names are directories inside it
   */
  public static Builder builder(Path root) {
    return new Builder(root);
  }

  /** The adapter root (its real path) that names resolve under. */
  public Path root() {
    return root;
  }

  /**
   * The directory of the adapter named {@code name} under the root, read in place.
   *
   * @param name a relative directory path under the root, e.g. {@code "support-bot"} or {@code
   *     "team-a/support-bot"}
   * @return the adapter directory (a real path); closing it does nothing
   * @throws IllegalArgumentException if the name is empty, absolute, has a {@code .} or {@code ..}
   *     segment, does not exist, is not a directory, or its real path leaves the root
   */
  public LocalAdapterDir resolveName(String name) {
    if (name == null || name.isBlank()) {
      throw refuse("adapter name is empty; give a directory under the adapter root %s%s", root);
    }
    Path rel = LocalPaths.parsePath(name, "adapter name \"" + name + "\"");
    if (rel.isAbsolute() || name.startsWith("/")) {
      throw refuse(
          "adapter name \"%s\" is absolute; give a name relative to the adapter root %s%s, or load"
              + " it by path",
          name, root);
    }
    for (Path segment : rel) {
      String s = segment.toString();
      if (s.equals("..") || s.equals(".")) {
        throw refuse(
            "adapter name \"%s\" has a \"%s\" segment; a name is a directory inside the adapter"
                + " root %s without . or .. segments%s",
            name, s, root);
      }
    }
    Path real = LocalPaths.realPathOrNull(root.resolve(rel));
    if (real == null) {
      throw refuse("adapter name \"%s\" does not exist under the adapter root %s%s", name, root);
    }
    if (!real.startsWith(root) || real.equals(root)) {
      throw new IllegalArgumentException(
          ("adapter name \"%s\" resolves to %s (through a symbolic link), outside the adapter root"
                  + " %s; only directories inside the root can be loaded by name")
              .formatted(name, real, root));
    }
    if (!Files.isDirectory(real)) {
      throw refuse("adapter name \"%s\" is a file, not a directory, under %s%s", name, root);
    }
    requireFilesInside(real, root, "adapter name \"" + name + "\"", "adapter root");
    return new LocalAdapterDir(real, name, false);
  }

  /**
   * The adapter directory at a path or URI; see the class comment for what is accepted.
   *
   * @param pathOrUri a local path (relative ones resolve against the working directory), a {@code
   *     file:} URI, or a Hadoop URI such as {@code hdfs://nn/adapters/a1}
   * @return the directory to read: in place for local paths, a temporary copy for remote URIs
   *     (delete it by closing the result once the adapter is loaded)
   * @throws IllegalArgumentException if the form is not allowed, the location is outside the
   *     allowed roots, does not exist, is not an adapter directory, or the URI is malformed
   * @throws UncheckedIOException naming the URI if copying a remote adapter fails
   */
  public LocalAdapterDir resolve(String pathOrUri) {
    if (pathOrUri == null || pathOrUri.isBlank()) {
      throw invalid("adapter path is empty");
    }
    if (!URI_PREFIX.matcher(pathOrUri).matches()) {
      return local(pathOrUri, LocalPaths.parsePath(pathOrUri, "adapter path " + pathOrUri));
    }
    URI uri;
    try {
      uri = new URI(pathOrUri);
    } catch (URISyntaxException e) {
      IllegalArgumentException refused =
          invalid("adapter URI %s is malformed (%s)", pathOrUri, e.getMessage());
      refused.initCause(e);
      throw refused;
    }
    String scheme = uri.getScheme().toLowerCase(Locale.ROOT);
    if (scheme.equals(FILE_SCHEME)) {
      return local(pathOrUri, fileUriPath(pathOrUri, uri));
    }
    if (!remoteSchemes.contains(scheme)) {
      throw invalid("adapter URI %s is refused: scheme %s: is not allowed here", pathOrUri, scheme);
    }
    return HadoopAdapterCopy.copy(pathOrUri, hadoopConf(), tempDir);
  }

  private LocalAdapterDir local(String source, Path path) {
    Path abs = path.toAbsolutePath().normalize();
    if (!allowAnyLocalPath && allowedRoots.isEmpty()) {
      throw refuse(
          "adapter path %s is refused: loading by path is not enabled; give an adapter name under"
              + " the adapter root %s%s",
          source, root);
    }
    Path real = LocalPaths.realPathOrNull(abs);
    if (real == null) {
      boolean lexicallyInside = allowAnyLocalPath || inside(abs);
      throw lexicallyInside
          ? invalid("adapter path %s does not exist", source)
          : invalid("adapter path %s is outside the allowed roots %s", source, allowedRoots);
    }
    if (!allowAnyLocalPath && !inside(real)) {
      throw invalid(
          "adapter path %s (real path %s) is outside the allowed roots %s",
          source, real, allowedRoots);
    }
    if (!Files.isDirectory(real)) {
      throw invalid("adapter path %s is a file, not an adapter directory", source);
    }
    if (!allowAnyLocalPath) {
      Path within = allowedRoots.stream().filter(real::startsWith).findFirst().orElseThrow();
      requireFilesInside(real, within, "adapter path " + source, "allowed root");
    }
    return new LocalAdapterDir(real, source, false);
  }

  private static Path fileUriPath(String source, URI uri) {
    try {
      return Path.of(uri);
    } catch (IllegalArgumentException | FileSystemNotFoundException e) {
      throw new IllegalArgumentException(
          "adapter URI %s is not a local file URI (%s); use file:///absolute/path"
              .formatted(source, e.getMessage()),
          e);
    }
  }

  /** Refuses an adapter file in {@code dir} that is a symbolic link out of {@code within}. */
  private static void requireFilesInside(Path dir, Path within, String what, String rootKind) {
    for (String file : HadoopAdapterCopy.ADAPTER_FILES) {
      Path real = LocalPaths.realPathOrNull(dir.resolve(file));
      if (real != null && !real.startsWith(within)) {
        throw new IllegalArgumentException(
            "%s: its %s resolves to %s (through a symbolic link), outside the %s %s; adapter files must be inside it"
                .formatted(what, file, real, rootKind, within));
      }
    }
  }

  /** A refusal: {@code format} with {@code args}, then the names under the root as last arg. */
  private IllegalArgumentException refuse(String format, Object... args) {
    Object[] all = Arrays.copyOf(args, args.length + 1);
    all[args.length] = namesHint();
    return new IllegalArgumentException(format.formatted(all));
  }

  /** A refusal: {@code format} with {@code args}, then what this source accepts. */
  private IllegalArgumentException invalid(String format, Object... args) {
    return new IllegalArgumentException(format.formatted(args) + "; valid: " + validForms());
  }

  private boolean inside(Path p) {
    return allowedRoots.stream().anyMatch(p::startsWith);
  }

  private synchronized Configuration hadoopConf() {
    if (conf == null) {
      conf = givenConf != null ? givenConf : new Configuration();
    }
    return conf;
  }

  /** One phrase listing what this source accepts. */
  private String validForms() {
    List<String> forms = new ArrayList<>();
    forms.add("an adapter name under " + root);
    if (allowAnyLocalPath) {
      forms.add("any local directory path or file: URI");
    } else if (!allowedRoots.isEmpty()) {
      forms.add("a path or file: URI inside " + allowedRoots);
    }
    if (!remoteSchemes.isEmpty()) {
      forms.add("a URI with scheme " + new TreeSet<>(remoteSchemes));
    }
    return String.join(", or ", forms);
  }

  /** "; valid names: [a, b]" listing the directories directly under the root, or "" if none. */
  /** "; valid names include [a, b]": the directories directly under the root. */
  private String namesHint() {
    List<String> names = LocalPaths.childDirectories(root, NAMES_LISTED + 1);
    if (names.isEmpty()) {
      return " (which holds no adapter directories)";
    }
    boolean more = names.size() > NAMES_LISTED;
    return "; valid names include "
        + names.subList(0, Math.min(NAMES_LISTED, names.size()))
        + (more ? " ..." : "");
  }

  /**
   * Options of an {@link AdapterSource}, validated together by {@link #build()}. Not thread-safe;
   * build once and share the source.
   */
  public static final class Builder {
    private final Path root;
    private final List<Path> allowedRoots = new ArrayList<>();
    private boolean allowAnyLocalPath;
    private final Set<String> remoteSchemes = new TreeSet<>();
    private Configuration conf;
    private Path tempDir;

    private Builder(Path root) {
      this.root = root;
    }

    /** Directories inside which plain paths and {@code file:} URIs are accepted (default none). */
    public Builder allowedRoots(Collection<Path> roots) {
      allowedRoots.addAll(roots);
      return this;
    }

    /** Accept any local directory by path (for the CLI, where the user owns the machine). */
    public Builder allowAnyLocalPath(boolean allow) {
      this.allowAnyLocalPath = allow;
      return this;
    }

    /**
     * Hadoop schemes whose URIs are copied to a local temporary directory (default none), e.g.
     * {@code hdfs}, {@code s3a}. {@code file} is local: allow its directories with {@link
     * #allowedRoots}.
     */
    public Builder allowRemoteSchemes(Collection<String> schemes) {
      for (String s : schemes) {
        String scheme = s.toLowerCase(Locale.ROOT);
        if (scheme.equals(FILE_SCHEME) || !scheme.matches("[a-z][a-z0-9+.-]*")) {
          throw new IllegalArgumentException(
              "Cannot allow remote scheme \""
                  + s
                  + "\", must be a Hadoop scheme such as hdfs or s3a (file: is local: use"
                  + " allowedRoots)");
        }
        remoteSchemes.add(scheme);
      }
      return this;
    }

    /** The Hadoop configuration for remote URIs (default: a new {@code Configuration()}). */
    public Builder hadoopConf(Configuration conf) {
      this.conf = conf;
      return this;
    }

    /** Where remote adapters are copied before loading (default {@code java.io.tmpdir}). */
    public Builder tempDir(Path dir) {
      this.tempDir = dir;
      return this;
    }

    /**
     * The source.
     *
     * @throws IllegalArgumentException naming the directory if the root, an allowed root or the
     *     temporary directory is not an existing directory
     */
    public AdapterSource build() {
      return new AdapterSource(this);
    }
  }
}
