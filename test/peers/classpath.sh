#!/bin/sh
# Prints the Java classpath needed by test/peers/CuratorPeer.java (source-launcher mode):
#
#   java -cp "$(sh test/peers/classpath.sh)" test/peers/CuratorPeer.java lock 127.0.0.1:2181 /locks/a 20 5 /tmp/log c1
#
# Jars come from the Debian packages (libcurator-*-java, libzookeeper-java, libguava-java,
# libslf4j-java) under /usr/share/java, or from $ZKGATE_JAVA_LIBS if set.
# Exits 1 (with a message on stderr) if a required jar is missing.
set -eu
DIR="${ZKGATE_JAVA_LIBS:-/usr/share/java}"

# Required: Curator (recipes/framework/client), the ZooKeeper client (+ jute), guava (Curator
# is not shaded in Debian), slf4j-api. slf4j-nop keeps every logger silent; slf4j-simple is
# the fallback (then run java with -Dorg.slf4j.simpleLogger.defaultLogLevel=warn).
REQUIRED="curator-recipes curator-framework curator-client zookeeper zookeeper-jute guava slf4j-api"
# Optional: only needed if -Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty
# is used, or referenced by curator-framework's manifest Class-Path.
OPTIONAL="netty-handler netty-transport netty-transport-native-epoll netty-transport-native-unix-common netty-codec netty-buffer netty-resolver netty-common jackson-databind jackson-core jackson-annotations"

cp=""
add() { if [ -z "$cp" ]; then cp="$1"; else cp="$cp:$1"; fi; }

for j in $REQUIRED; do
  if [ -f "$DIR/$j.jar" ]; then
    add "$DIR/$j.jar"
  else
    echo "classpath.sh: required jar $DIR/$j.jar not found" >&2
    exit 1
  fi
done

if [ -f "$DIR/slf4j-nop.jar" ]; then
  add "$DIR/slf4j-nop.jar"
elif [ -f "$DIR/slf4j-simple.jar" ]; then
  add "$DIR/slf4j-simple.jar"
fi

for j in $OPTIONAL; do
  if [ -f "$DIR/$j.jar" ]; then add "$DIR/$j.jar"; fi
done

printf '%s\n' "$cp"
