"""Write the labelled template corpus: log messages shaped like Loghub's public 2k samples
(HDFS, Hadoop, Spark, Zookeeper, OpenStack, OpenSSH, Apache, BGL), each line with the id of the
template it was made from. The templates and values are written here; nothing is downloaded.

Run ``python tests/data/log_templates/make_corpus.py`` to rewrite ``<system>.csv`` (columns
``event``, ``message``; deterministic). ``bench/templates.py`` measures grouping accuracy on it.
"""
from __future__ import annotations

import csv
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _ip(r: random.Random) -> str:
    return f"10.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"


def _blk(r: random.Random) -> str:
    return f"blk_{r.choice(['', '-'])}{r.randint(10**17, 10**19 - 1)}"


def _uuid(r: random.Random) -> str:
    h = f"{r.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _hex(r: random.Random, n: int = 32) -> str:
    return f"{r.getrandbits(4 * n):0{n}x}"


USERS = ["webmaster", "test", "admin", "oracle", "guest", "support", "ftpuser", "pi", "ubnt", "user1", "git", "postgres"]
HOSTS = ["ns.marryaldkfaczcz.com", "static.vnpt.vn", "host-62-210.example.net", "ip-172-31-7-4.ec2.internal"]
TASK = ["attempt_1445144423722_0020_m_000000_0", "attempt_1445087491445_0005_r_000001_1",
        "attempt_1445182159119_0012_m_000004_0"]

#: system -> [(event id, template maker)]
SYSTEMS = {
    "hdfs": [
        ("E1", lambda r: f"Receiving block {_blk(r)} src: /{_ip(r)}:{r.randint(30000, 60000)} dest: /{_ip(r)}:50010"),
        ("E2", lambda r: f"PacketResponder {r.randint(0, 2)} for block {_blk(r)} terminating"),
        ("E3", lambda r: f"Received block {_blk(r)} of size {r.choice([67108864, r.randint(1000, 67108864)])} from /{_ip(r)}"),
        ("E4", lambda r: f"BLOCK* NameSystem.addStoredBlock: blockMap updated: {_ip(r)}:50010 is added to {_blk(r)} size {r.randint(1000, 67108864)}"),
        ("E5", lambda r: f"BLOCK* NameSystem.allocateBlock: /user/root/rand/_temporary/_task_200811092030_0001_m_{r.randint(0, 999):06d}_0/part-{r.randint(0, 999):05d}. {_blk(r)}"),
        ("E6", lambda r: f"Verification succeeded for {_blk(r)}"),
        ("E7", lambda r: f"Deleting block {_blk(r)} file /mnt/hadoop/dfs/data/current/subdir{r.randint(0, 63)}/{_blk(r)}"),
        ("E8", lambda r: f"{_ip(r)}:50010:Got exception while serving {_blk(r)} to /{_ip(r)}:"),
        ("E9", lambda r: f"{_ip(r)}:50010:Transmitted block {_blk(r)} to /{_ip(r)}:50010"),
    ],
    "openstack": [
        ("R1", lambda r: f'{_ip(r)} "GET /v2/{_hex(r)}/servers/detail HTTP/1.1" status: 200 len: {r.randint(1000, 2000)} time: {r.random():.7f}'),
        ("R2", lambda r: f'{_ip(r)} "GET /v2/{_hex(r)}/servers/{_uuid(r)} HTTP/1.1" status: 200 len: {r.randint(1500, 1900)} time: {r.random():.7f}'),
        ("R3", lambda r: f'{_ip(r)} "POST /v2/{_hex(r)}/os-server-external-events HTTP/1.1" status: 200 len: {r.randint(300, 400)} time: {r.random():.7f}'),
        ("R4", lambda r: f'{_ip(r)} "DELETE /v2/{_hex(r)}/servers/{_uuid(r)} HTTP/1.1" status: 204 len: 203 time: {r.random():.7f}'),
        ("R5", lambda r: f'{_ip(r)} "POST /v2/{_hex(r)}/servers HTTP/1.1" status: 202 len: {r.randint(700, 800)} time: {r.random():.7f}'),
        ("R6", lambda r: f'{_ip(r)} "GET /v2/{_hex(r)}/os-availability-zone HTTP/1.1" status: 200 len: {r.randint(300, 400)} time: {r.random():.7f}'),
        ("E1", lambda r: f"[instance: {_uuid(r)}] VM Started (Lifecycle Event)"),
        ("E2", lambda r: f"[instance: {_uuid(r)}] VM Paused (Lifecycle Event)"),
        ("E3", lambda r: f"[instance: {_uuid(r)}] VM Resumed (Lifecycle Event)"),
        ("E4", lambda r: f"[instance: {_uuid(r)}] Took {r.uniform(1, 30):.2f} seconds to spawn the instance on the hypervisor."),
        ("E5", lambda r: f"[instance: {_uuid(r)}] Took {r.uniform(1, 30):.2f} seconds to build instance."),
        ("E6", lambda r: f"[instance: {_uuid(r)}] Attempting claim: memory {r.choice([512, 2048, 4096])} MB, disk {r.choice([1, 20, 40])} GB, vcpus {r.randint(1, 8)} CPU"),
        ("E7", lambda r: f"[instance: {_uuid(r)}] Claim successful"),
        ("E8", lambda r: f"[instance: {_uuid(r)}] Terminating instance"),
        ("E9", lambda r: f"Running instance usage audit for host cp-{r.randint(1, 9)}.slowvm1.tcloud-pg0.utah.cloudlab.us from 2017-05-16 {r.randint(0, 23):02d}:00:00 to 2017-05-16 {r.randint(0, 23):02d}:00:00. {r.randint(1, 9)} instances."),
    ],
    "openssh": [
        ("E1", lambda r: f"Failed password for invalid user {r.choice(USERS)} from {_ip(r)} port {r.randint(1024, 65535)} ssh2"),
        ("E2", lambda r: f"Failed password for root from {_ip(r)} port {r.randint(1024, 65535)} ssh2"),
        ("E3", lambda r: f"Invalid user {r.choice(USERS)} from {_ip(r)}"),
        ("E4", lambda r: f"pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={_ip(r)}  user=root"),
        ("E5", lambda r: f"Received disconnect from {_ip(r)}: 11: Bye Bye [preauth]"),
        ("E6", lambda r: f"Connection closed by {_ip(r)} [preauth]"),
        ("E7", lambda r: f"reverse mapping checking getaddrinfo for {r.choice(HOSTS)} [{_ip(r)}] failed - POSSIBLE BREAK-IN ATTEMPT!"),
        ("E8", lambda r: f"input_userauth_request: invalid user {r.choice(USERS)} [preauth]"),
        ("E9", lambda r: f"PAM {r.randint(2, 5)} more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost={_ip(r)}  user=root"),
        ("E10", lambda r: f"Accepted password for {r.choice(USERS)} from {_ip(r)} port {r.randint(1024, 65535)} ssh2"),
    ],
    "apache": [
        ("E1", lambda r: f"jk2_init() Found child {r.randint(1000, 9999)} in scoreboard slot {r.randint(6, 10)}"),
        ("E2", lambda r: "workerEnv.init() ok /etc/httpd/conf/workers2.properties"),
        ("E3", lambda r: f"mod_jk child workerEnv in error state {r.randint(6, 9)}"),
        ("E4", lambda r: f"[client {_ip(r)}] Directory index forbidden by rule: /var/www/html/"),
        ("E5", lambda r: f"jk2_init() Can't find child {r.randint(1000, 9999)} in scoreboard"),
        ("E6", lambda r: f"mod_jk child init {r.randint(1, 3)} {r.randint(-2, 0)}"),
        ("E7", lambda r: f"[client {_ip(r)}] File does not exist: /var/www/html/{r.choice(['favicon.ico', 'robots.txt', 'sumthin', 'admin/login.php'])}"),
    ],
    "zookeeper": [
        ("E1", lambda r: f"Notification time out: {r.choice([400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 60000])}"),
        ("E2", lambda r: f"Received connection request /{_ip(r)}:{r.randint(30000, 60000)}"),
        ("E3", lambda r: f"Connection broken for id {r.randint(1, 3)}, my id = {r.randint(1, 3)}, error ="),
        ("E4", lambda r: "Send worker leaving thread"),
        ("E5", lambda r: f"Interrupting SendWorker"),
        ("E6", lambda r: f"Accepted socket connection from /{_ip(r)}:{r.randint(30000, 60000)}"),
        ("E7", lambda r: f"Client attempting to establish new session at /{_ip(r)}:{r.randint(30000, 60000)}"),
        ("E8", lambda r: f"Established session 0x{r.getrandbits(56):014x} with negotiated timeout {r.choice([10000, 20000, 30000])} for client /{_ip(r)}:{r.randint(30000, 60000)}"),
        ("E9", lambda r: f"Closed socket connection for client /{_ip(r)}:{r.randint(30000, 60000)} which had sessionid 0x{r.getrandbits(56):014x}"),
    ],
    "hadoop": [
        ("E1", lambda r: f"Progress of TaskAttempt {r.choice(TASK)} is : {r.random():.8f}"),
        ("E2", lambda r: f"Created MRAppMaster for application appattempt_14451444237{r.randint(10, 99)}_00{r.randint(10, 99)}_000001"),
        ("E3", lambda r: f"Address change detected. Old: msra-sa-{r.randint(10, 99)}/{_ip(r)}:{r.randint(1000, 9999)} New: msra-sa-{r.randint(10, 99)}:{r.randint(1000, 9999)}"),
        ("E4", lambda r: f"Failed to renew lease for [DFSClient_NONMAPREDUCE_{r.randint(10**8, 10**10)}_1] for {r.randint(10, 900)} seconds.  Will retry shortly ..."),
        ("E5", lambda r: f"Retrying connect to server: msra-sa-{r.randint(10, 99)}:{r.randint(1000, 9999)}. Already tried {r.randint(0, 9)} time(s); maxRetries=45"),
        ("E6", lambda r: f"ERROR IN CONTACTING RM."),
        ("E7", lambda r: f"{r.choice(TASK)} TaskAttempt Transitioned from {r.choice(['NEW', 'UNASSIGNED', 'ASSIGNED', 'RUNNING'])} to {r.choice(['UNASSIGNED', 'ASSIGNED', 'RUNNING', 'SUCCESS_CONTAINER_CLEANUP'])}"),
    ],
    "spark": [
        ("E1", lambda r: f"Found block rdd_{r.randint(0, 50)}_{r.randint(0, 50)} locally"),
        ("E2", lambda r: f"Started reading broadcast variable {r.randint(0, 99)}"),
        ("E3", lambda r: f"Block broadcast_{r.randint(0, 99)}_piece0 stored as bytes in memory (estimated size {r.uniform(1, 99):.1f} KB, free {r.uniform(1, 99):.1f} GB)"),
        ("E4", lambda r: f"Reading broadcast variable {r.randint(0, 99)} took {r.randint(1, 900)} ms"),
        ("E5", lambda r: f"Finished task {r.randint(0, 99)}.0 in stage {r.randint(0, 99)}.0 (TID {r.randint(0, 9999)}). {r.randint(900, 3000)} bytes result sent to driver"),
        ("E6", lambda r: f"Running task {r.randint(0, 99)}.0 in stage {r.randint(0, 99)}.0 (TID {r.randint(0, 9999)})"),
        ("E7", lambda r: f"Got assigned task {r.randint(0, 9999)}"),
        ("E8", lambda r: f"Partition rdd_{r.randint(0, 50)}_{r.randint(0, 50)} not found, computing it"),
    ],
    "bgl": [
        ("E1", lambda r: "instruction cache parity error corrected"),
        ("E2", lambda r: f"ciod: failed to read message prefix on control stream (CioStream socket to {_ip(r)}:{r.randint(30000, 60000)}"),
        ("E3", lambda r: f"data TLB error interrupt"),
        ("E4", lambda r: f"generating core.{r.randint(1, 9999)}"),
        ("E5", lambda r: f"{r.randint(1, 9)} ddr error(s) detected and corrected on rank 0, symbol {r.randint(0, 40)}, bit {r.randint(0, 7)}"),
        ("E6", lambda r: f"total of {r.randint(1, 99)} ddr error(s) detected and corrected"),
        ("E7", lambda r: f"CE sym {r.randint(0, 40)}, at 0x{r.getrandbits(32):08x}, mask 0x{r.getrandbits(8):02x}"),
    ],
}


def write(n_per_system: int = 200, seed: int = 18) -> None:
    for system, events in SYSTEMS.items():
        r = random.Random(f"{seed}-{system}")
        weights = [r.choice([1, 2, 4, 8]) for _ in events]
        with open(HERE / f"{system}.csv", "w", newline="") as out:
            w = csv.writer(out)
            w.writerow(["event", "message"])
            for _ in range(n_per_system):
                event, make = r.choices(events, weights)[0]
                w.writerow([event, make(r)])


if __name__ == "__main__":
    write()
