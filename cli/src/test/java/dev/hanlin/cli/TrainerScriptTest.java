package dev.hanlin.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.jar.Attributes;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import java.util.jar.Manifest;
import javax.tools.ToolProvider;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * bin/trainer on a machine whose default {@code java} is 17, as README's first command meets it: it
 * finds the JDK 25 elsewhere and runs the jar with it, or says what to install; it builds a missing
 * or stale jar with that JDK, or says to install Maven. The real trainer jar does not exist yet
 * when the cli module's tests run ({@code package} comes after), so a copy of the scripts runs in a
 * scratch tree with a tiny jar that prints the Java version it runs on, and a fake {@code mvn} that
 * records how it was called.
 */
class TrainerScriptTest {
  @TempDir static Path tmp;
  static Path tree, fake17, jdks, tools, tinyJar;

  @BeforeAll
  static void setUp() throws Exception {
    // a copy of bin/trainer and bin/lib/jdk.sh in a scratch tree
    tree = tmp.resolve("tree");
    Files.createDirectories(tree.resolve("bin/lib"));
    for (String f : List.of("bin/trainer", "bin/lib/jdk.sh"))
      Files.copy(TinyRun.repo().resolve(f), tree.resolve(f));
    // the machine's default java: 17, as Debian 12's
    fake17 = tmp.resolve("java17");
    script(
        fake17.resolve("bin/java"),
        "echo 'openjdk version \"17.0.15\" 2025-04-15' >&2\n"
            + "[ \"$1\" = -version ] && exit 0\n"
            + "echo 'UnsupportedClassVersionError: class file version 69.0' >&2\nexit 1\n");
    // a JDK folder holding this test's own JDK (>= 25), as /usr/lib/jvm/temurin-25-jdk-amd64
    jdks = tmp.resolve("jvm");
    Files.createDirectories(jdks);
    Files.createSymbolicLink(jdks.resolve("temurin-25"), Path.of(System.getProperty("java.home")));
    // the tools the scripts use, and no mvn or java among them
    tools = tmp.resolve("tools");
    Files.createDirectories(tools);
    for (String t :
        List.of("bash", "dirname", "readlink", "sed", "head", "find", "grep", "cat", "mkdir"))
      Files.createSymbolicLink(tools.resolve(t), Path.of("/usr/bin", t));
    tinyJar = tinyJar(tmp.resolve("tiny"));
  }

  @Test
  void findsTheJdk25WhenJava17ComesFirstOnPath() throws Exception {
    Result r = trainer(Map.of("HANLIN_JAR", tinyJar.toString()), "--version");
    assertEquals(0, r.code, r.out);
    assertTrue(r.out.contains("running on Java " + Runtime.version().feature()), r.out);
    assertTrue(r.out.contains("args: --version"), r.out);
    assertFalse(r.out.contains("note:"), r.out); // an older default java needs no word

    // JAVA_HOME at a Java 17 is passed over too, with a note saying so
    Result h =
        trainer(
            Map.of("HANLIN_JAR", tinyJar.toString(), "JAVA_HOME", fake17.toString()),
            "--mode",
            "pretrain");
    assertEquals(0, h.code, h.out);
    assertTrue(h.out.contains("note: JAVA_HOME=" + fake17 + " is Java 17; using " + jdks), h.out);
    assertTrue(h.out.contains("args: --mode pretrain"), h.out);

    Result p = trainer(Map.of("HANLIN_JAR", "/nonexistent"), "--print-java");
    assertEquals(0, p.code, p.out);
    assertTrue(p.out.contains(jdks + "/temurin-25/bin/java (Java "), p.out);
  }

  /**
   * With LANG unset (POSIX, as in a fresh container) the JVM read the command line as ASCII, so
   * {@code --prompt 春风} reached the trainer as U+FFFD; bin/trainer runs it under C.UTF-8.
   */
  @Test
  void chineseArgumentsSurviveAPosixLocale() throws Exception {
    assumeUtf8CommandLines();
    Map<String, String> env = new java.util.HashMap<>(Map.of("HANLIN_JAR", tinyJar.toString()));
    for (String k : List.of("LANG", "LC_ALL", "LC_CTYPE", "LANGUAGE")) env.put(k, "");
    Result r = trainer(env, "--prompt", "春风");
    assertEquals(0, r.code, r.out);
    assertTrue(r.out.contains("args: --prompt 春风"), r.out);
  }

  /**
   * These tests hand Chinese text to child processes on their command lines, which a JVM under an
   * ASCII locale encodes as '?' before the child sees it; bin/test runs the suite under C.UTF-8.
   */
  static void assumeUtf8CommandLines() {
    org.junit.jupiter.api.Assumptions.assumeTrue(
        System.getProperty("sun.jnu.encoding", "").equalsIgnoreCase("UTF-8"),
        "the test JVM's locale is not UTF-8 (run the suite with bin/test, or LC_ALL=C.UTF-8)");
  }

  @Test
  void withoutAJdk25ItSaysWhatToInstall() throws Exception {
    Path empty = Files.createDirectories(tmp.resolve("no-jdks"));
    Result r =
        trainer(
            Map.of("HANLIN_JAR", tinyJar.toString(), "HANLIN_JDK_DIRS", empty.toString()),
            "--version");
    assertEquals(3, r.code, r.out);
    assertTrue(r.out.contains("Hanlin needs a JDK 25 or newer, and found none"), r.out);
    assertTrue(r.out.contains("'java' on PATH (" + fake17.resolve("bin/java") + ") is Java 17"));
    assertTrue(r.out.contains("no JDK >= 25 under " + empty), r.out);
    assertTrue(
        r.out.contains("apt-get install -y temurin-25-jdk")
            || r.out.contains("apt-get install -y openjdk-25-jdk-headless"),
        r.out);
    assertFalse(r.out.contains("running on Java"), r.out);
  }

  @Test
  void buildsAMissingOrStaleJarWithTheJdk25() throws Exception {
    Path jar = tree.resolve("cli/target/trainer.jar");
    Files.createDirectories(tree.resolve("cli/src/main/java"));
    Files.writeString(tree.resolve("cli/src/main/java/A.java"), "class A {}");
    // no Maven: the message says what to install
    Result none = trainer(Map.of(), "--version");
    assertEquals(3, none.code, none.out);
    assertTrue(none.out.contains("is not built yet, and building it needs Maven"), none.out);
    assertTrue(none.out.contains("apt-get install -y maven"), none.out);

    // a fake mvn that records its JAVA_HOME and arguments and "builds" the tiny jar
    Path mvn = tmp.resolve("maven/bin/mvn");
    Path calls = tmp.resolve("mvn-calls");
    script(
        mvn,
        "echo \"JAVA_HOME=$JAVA_HOME $*\" >> "
            + calls
            + "\nmkdir -p cli/target/lib && cat "
            + tinyJar
            + " > cli/target/trainer.jar\n");
    Map<String, String> env = Map.of("EXTRA_PATH", mvn.getParent().toString());
    Result built = trainer(env, "--version");
    assertEquals(0, built.code, built.out);
    assertTrue(built.out.contains("trainer.jar is not built yet: building it"), built.out);
    assertTrue(built.out.contains("running on Java " + Runtime.version().feature()), built.out);
    String call = Files.readString(calls);
    assertTrue(
        call.startsWith("JAVA_HOME=" + Path.of(System.getProperty("java.home")).toRealPath()));
    assertTrue(call.contains("package -DskipTests"), call);

    // fresh: runs without building
    Result fresh = trainer(env, "--version");
    assertEquals(0, fresh.code, fresh.out);
    assertFalse(fresh.out.contains("building it"), fresh.out);
    assertEquals(1, Files.readAllLines(calls).size());

    // a source newer than the jar: built again
    Files.setLastModifiedTime(
        jar, java.nio.file.attribute.FileTime.fromMillis(System.currentTimeMillis() - 60_000));
    Files.writeString(tree.resolve("cli/src/main/java/A.java"), "class A { int x; }");
    Result stale = trainer(env, "--version");
    assertEquals(0, stale.code, stale.out);
    assertTrue(
        stale.out.contains("cli/src/main/java/A.java changed since " + jar + " was built"),
        stale.out);
    assertEquals(2, Files.readAllLines(calls).size());
  }

  record Result(int code, String out) {}

  /** bin/trainer of the scratch tree, JAVA_HOME unset, the Java 17 first on PATH. */
  static Result trainer(Map<String, String> env, String... args) throws Exception {
    List<String> cmd = new java.util.ArrayList<>(List.of("/usr/bin/bash", "bin/trainer"));
    cmd.addAll(List.of(args));
    ProcessBuilder pb = new ProcessBuilder(cmd).directory(tree.toFile());
    Map<String, String> e = pb.environment();
    e.remove("JAVA_HOME");
    e.remove("HANLIN_JAR");
    e.put("HANLIN_JDK_DIRS", jdks.toString());
    String extra = env.getOrDefault("EXTRA_PATH", "");
    e.put("PATH", fake17.resolve("bin") + ":" + tools + (extra.isEmpty() ? "" : ":" + extra));
    env.forEach(
        (k, v) -> {
          if (!k.equals("EXTRA_PATH")) e.put(k, v);
        });
    Path log = Files.createTempFile(tmp, "trainer", ".log");
    Process p = pb.redirectErrorStream(true).redirectOutput(log.toFile()).start();
    assertTrue(p.waitFor(2, TimeUnit.MINUTES), "bin/trainer did not finish");
    return new Result(p.exitValue(), Files.readString(log));
  }

  static void script(Path file, String body) throws IOException {
    Files.createDirectories(file.getParent());
    Files.writeString(file, "#!/bin/sh\n" + body);
    Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rwxr-xr-x"));
  }

  /** A jar whose main prints the Java version it runs on and its arguments. */
  static Path tinyJar(Path dir) throws IOException {
    Path src = dir.resolve("src/Tiny.java");
    Files.createDirectories(src.getParent());
    Files.writeString(
        src,
        """
        public class Tiny {
          public static void main(String[] args) {
            System.out.println("running on Java " + Runtime.version().feature());
            System.out.println("args: " + String.join(" ", args));
          }
        }
        """);
    Path classes = Files.createDirectories(dir.resolve("classes"));
    int rc =
        ToolProvider.getSystemJavaCompiler()
            .run(null, null, null, "-d", classes.toString(), src.toString());
    assertEquals(0, rc, "javac failed");
    Manifest m = new Manifest();
    m.getMainAttributes().put(Attributes.Name.MANIFEST_VERSION, "1.0");
    m.getMainAttributes().put(Attributes.Name.MAIN_CLASS, "Tiny");
    Path jar = dir.resolve("tiny.jar");
    try (OutputStream o = Files.newOutputStream(jar);
        JarOutputStream j = new JarOutputStream(o, m)) {
      j.putNextEntry(new JarEntry("Tiny.class"));
      j.write(Files.readAllBytes(classes.resolve("Tiny.class")));
      j.closeEntry();
    }
    return jar;
  }
}
