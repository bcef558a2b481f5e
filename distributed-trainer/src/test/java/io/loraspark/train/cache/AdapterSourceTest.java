package io.loraspark.train.cache;

import static io.loraspark.train.cache.AdapterDirs.adapter;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.loraspark.train.lora.PeftAdapter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Resolving adapter names, paths and URIs on real directories, symlinks and Hadoop file systems.
 */
class AdapterSourceTest {

  @TempDir Path tmp;

  Path root;
  Path outside;

  @BeforeEach
  void setUp() throws IOException {
    root = Files.createDirectories(tmp.resolve("adapters")).toRealPath();
    outside = Files.createDirectories(tmp.resolve("outside")).toRealPath();
    adapter(root, "a1", 8);
    adapter(root.resolve("team"), "a2", 8);
    adapter(outside, "secret", 8);
  }

  @Test
  void resolvesANameUnderTheRootInPlace() {
    AdapterSource source = AdapterSource.namesUnder(root);
    try (LocalAdapterDir dir = source.resolveName("a1")) {
      assertThat(dir.path()).isEqualTo(root.resolve("a1"));
      assertThat(dir.isTemporaryCopy()).isFalse();
    }
    assertThat(root.resolve("a1")).as("closing does not touch the user's directory").isDirectory();
    try (LocalAdapterDir dir = source.resolveName("team/a2")) {
      assertThat(dir.path()).isEqualTo(root.resolve("team/a2"));
    }
  }

  @Test
  void refusesNamesWithDotDotSegments() {
    AdapterSource source = AdapterSource.namesUnder(root);
    for (String name : List.of("../outside/secret", "team/../../outside/secret", "a1/..")) {
      assertThatThrownBy(() -> source.resolveName(name))
          .as(name)
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageStartingWith("adapter name \"" + name + "\" has a \"..\" segment")
          .hasMessageContaining("inside the adapter root " + root)
          .hasMessageContaining("valid names include [a1, team]")
          .hasMessageNotContaining("\n");
    }
  }

  @Test
  void refusesAnAbsoluteName() {
    String name = outside.resolve("secret").toString();
    assertThatThrownBy(() -> AdapterSource.namesUnder(root).resolveName(name))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageStartingWith("adapter name \"" + name + "\" is absolute")
        .hasMessageContaining("relative to the adapter root " + root);
  }

  @Test
  void refusesAnEmptyName() {
    AdapterSource source = AdapterSource.namesUnder(root);
    for (String name : new String[] {"", "  ", null}) {
      assertThatThrownBy(() -> source.resolveName(name))
          .as("[%s]", name)
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageStartingWith("adapter name is empty")
          .hasMessageContaining(root.toString());
    }
  }

  @Test
  void refusesAMissingNameListingTheValidOnes() {
    assertThatThrownBy(() -> AdapterSource.namesUnder(root).resolveName("a3"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage(
            "adapter name \"a3\" does not exist under the adapter root "
                + root
                + "; valid names include [a1, team]");
  }

  @Test
  void refusesASymlinkThatLeavesTheRoot() throws IOException {
    Files.createSymbolicLink(root.resolve("evil"), outside.resolve("secret"));
    assertThatThrownBy(() -> AdapterSource.namesUnder(root).resolveName("evil"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage(
            "adapter name \"evil\" resolves to "
                + outside.resolve("secret")
                + " (through a symbolic link), outside the adapter root "
                + root
                + "; only directories inside the root can be loaded by name");
  }

  @Test
  void refusesAnAdapterFileThatLinksOutOfTheRoot() throws IOException {
    Path a3 = Files.createDirectories(root.resolve("a3"));
    Files.writeString(a3.resolve(PeftAdapter.CONFIG_FILE), "{}");
    Path target = outside.resolve("secret").resolve(PeftAdapter.WEIGHTS_FILE);
    Files.createSymbolicLink(a3.resolve(PeftAdapter.WEIGHTS_FILE), target);

    assertThatThrownBy(() -> AdapterSource.namesUnder(root).resolveName("a3"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage(
            "adapter name \"a3\": its adapter_model.safetensors resolves to "
                + target
                + " (through a symbolic link), outside the adapter root "
                + root
                + "; adapter files must be inside it");
    AdapterSource byPath = AdapterSource.builder(tmp).allowedRoots(List.of(root)).build();
    assertThatThrownBy(() -> byPath.resolve(a3.toString()))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("outside the allowed root " + root);
  }

  @Test
  void followsASymlinkThatStaysInsideTheRoot() throws IOException {
    Files.createSymbolicLink(root.resolve("alias"), root.resolve("a1"));
    try (LocalAdapterDir dir = AdapterSource.namesUnder(root).resolveName("alias")) {
      assertThat(dir.path()).isEqualTo(root.resolve("a1"));
    }
  }

  @Test
  void refusesLocalPathsWhenNoRootIsAllowed() {
    String path = root.resolve("a1").toString();
    assertThatThrownBy(() -> AdapterSource.namesUnder(root).resolve(path))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageStartingWith(
            "adapter path " + path + " is refused: loading by path is not enabled")
        .hasMessageContaining("give an adapter name under the adapter root " + root);
  }

  @Test
  void acceptsPathsAndFileUrisInsideTheAllowedRoots() {
    AdapterSource source = AdapterSource.builder(root).allowedRoots(List.of(outside)).build();
    Path secret = outside.resolve("secret");
    for (String given : List.of(secret.toString(), secret.toUri().toString())) {
      try (LocalAdapterDir dir = source.resolve(given)) {
        assertThat(dir.path()).as(given).isEqualTo(secret);
        assertThat(dir.source()).isEqualTo(given);
      }
    }
  }

  @Test
  void refusesPathsOutsideTheAllowedRoots() throws IOException {
    Path allowed = Files.createDirectories(tmp.resolve("allowed")).toRealPath();
    Files.createSymbolicLink(allowed.resolve("link"), outside.resolve("secret"));
    AdapterSource source = AdapterSource.builder(root).allowedRoots(List.of(allowed)).build();
    Path secret = outside.resolve("secret");

    for (String given :
        List.of(
            secret.toString(),
            secret.toUri().toString(),
            allowed + "/../outside/secret",
            allowed.resolve("missing").resolve("..").resolve("..").resolve("outside")
                + "/secret")) {
      assertThatThrownBy(() -> source.resolve(given))
          .as(given)
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageStartingWith("adapter path " + given)
          .hasMessageContaining("is outside the allowed roots [" + allowed + "]")
          .hasMessageContaining("valid: an adapter name under " + root)
          .hasMessageContaining("or a path or file: URI inside [" + allowed + "]");
    }
    assertThatThrownBy(() -> source.resolve(allowed.resolve("link").toString()))
        .as("a symlink inside an allowed root that points out of it")
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("(real path " + secret + ") is outside the allowed roots");
  }

  @Test
  void anyLocalPathIsAcceptedOnlyWithTheExplicitFlag() {
    AdapterSource cli = AdapterSource.builder(root).allowAnyLocalPath(true).build();
    try (LocalAdapterDir dir = cli.resolve(outside.resolve("secret").toString())) {
      assertThat(dir.path()).isEqualTo(outside.resolve("secret"));
    }
    assertThatThrownBy(() -> cli.resolve(outside.resolve("nope").toString()))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("does not exist; valid:")
        .hasMessageContaining("any local directory path or file: URI");
  }

  @Test
  void refusesRemoteSchemesUnlessAllowed() {
    AdapterSource source = AdapterSource.namesUnder(root);
    String uri = "hdfs://namenode:8020/adapters/a1";
    assertThatThrownBy(() -> source.resolve(uri))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage(
            "adapter URI "
                + uri
                + " is refused: scheme hdfs: is not allowed here; valid: an adapter name under "
                + root);
    assertThatThrownBy(
            () -> AdapterSource.builder(root).allowRemoteSchemes(List.of("file")).build())
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("file: is local: use allowedRoots");
  }

  @Test
  void hadoopCopyTakesOnlyTheAdapterFilesAndCloseDeletesIt() throws IOException {
    Path remote = adapter(tmp.resolve("remote"), "r1", 16);
    Files.writeString(remote.resolve(PeftAdapter.DELTA_README), "# Delta-LoRA");
    Files.write(remote.resolve("optimizer.safetensors"), new byte[64]);
    Files.createDirectories(remote.resolve("checkpoints"));
    Path copies = Files.createDirectories(tmp.resolve("copies"));
    String uri = remote.toUri().toString(); // file:///..., through Hadoop's LocalFileSystem

    LocalAdapterDir copy = HadoopAdapterCopy.copy(uri, new Configuration(), copies);

    assertThat(copy.isTemporaryCopy()).isTrue();
    assertThat(copy.path().getParent()).isEqualTo(copies);
    assertThat(names(copy.path()))
        .containsExactlyInAnyOrder(
            PeftAdapter.CONFIG_FILE, PeftAdapter.WEIGHTS_FILE, PeftAdapter.DELTA_README);
    assertThat(copy.path().resolve(PeftAdapter.WEIGHTS_FILE))
        .hasSameBinaryContentAs(remote.resolve(PeftAdapter.WEIGHTS_FILE));
    copy.close();
    assertThat(names(copies)).as("the copy is deleted").isEmpty();
    assertThat(remote.resolve(PeftAdapter.WEIGHTS_FILE)).as("the source is untouched").exists();
  }

  @Test
  void hadoopCopyRefusesWhatIsNotAnAdapterDirectory() throws IOException {
    Path remote = adapter(tmp.resolve("remote"), "r1", 16);
    Files.delete(remote.resolve(PeftAdapter.WEIGHTS_FILE));
    Path copies = Files.createDirectories(tmp.resolve("copies"));
    Configuration conf = new Configuration();

    String uri = remote.toUri().toString();
    assertThatThrownBy(() -> HadoopAdapterCopy.copy(uri, conf, copies))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("adapter URI " + uri + " has no [adapter_model.safetensors]");
    String missing = tmp.resolve("nowhere").toUri().toString();
    assertThatThrownBy(() -> HadoopAdapterCopy.copy(missing, conf, copies))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("adapter URI " + missing + " does not exist");
    assertThat(names(copies)).as("nothing left behind").isEmpty();
  }

  @Test
  void allowedRemoteUriIsCopiedLoadedAndTheCopyDeleted() throws IOException {
    Path remote = adapter(tmp.resolve("remote"), "r1", 24);
    Path copies = Files.createDirectories(tmp.resolve("copies"));
    // A real Hadoop file system under a non-file scheme: viewfs mounting the local directory.
    Configuration conf = new Configuration();
    conf.set("fs.viewfs.mounttable.store.link./adapters", tmp.resolve("remote").toUri().toString());
    conf.setBoolean("fs.viewfs.impl.disable.cache", true);
    AdapterSource source =
        AdapterSource.builder(root)
            .allowRemoteSchemes(List.of("viewfs"))
            .hadoopConf(conf)
            .tempDir(copies)
            .build();
    List<Path> seen = new ArrayList<>();
    AdapterCache<byte[]> cache =
        new AdapterCache<>(
            100,
            source,
            (name, dir) -> {
              seen.add(dir);
              assertThat(names(dir)).contains(PeftAdapter.CONFIG_FILE, PeftAdapter.WEIGHTS_FILE);
              return AdapterDirs.readWeights(name, dir);
            },
            v -> v.length,
            v -> {});

    assertThat(cache.load("r1", "viewfs://store/adapters/r1")).isEqualTo(24);

    assertThat(seen).singleElement().satisfies(d -> assertThat(d.getParent()).isEqualTo(copies));
    assertThat(names(copies)).as("the copy is deleted after the load").isEmpty();
    try (AdapterLease<byte[]> lease = cache.acquire("r1")) {
      assertThat(lease.value())
          .isEqualTo(Files.readAllBytes(remote.resolve("adapter_model.safetensors")));
    }
  }

  private static List<String> names(Path dir) {
    try (Stream<Path> s = Files.list(dir)) {
      return s.map(p -> p.getFileName().toString()).toList();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
