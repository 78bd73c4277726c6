"""A Python worker for scene 2, through the pipc module that ships with
posix-ipc (run with PYTHONPATH=$(npx posix-ipc python-path)): the same
queues as the node workers, JSON items, large items through side segments."""
import sys
import time

import pipc


def main() -> None:
    jobs_name, results_name, label = sys.argv[1:4]
    jobs = pipc.Queue(jobs_name, create=False)
    results = pipc.Queue(results_name, create=False)
    print("ready", flush=True)
    count = 0
    while True:
        job = jobs.get(timeout=15)
        if job.get("stop"):
            break
        time.sleep(0.02)  # the "work"
        if "blob" in job:
            print(f"took job {job['id']} with a {len(job['blob'])}-byte payload", flush=True)
        results.put({"id": job["id"], "result": job["n"] * job["n"] + len(job.get("blob", "")), "by": label},
                    timeout=10)
        count += 1
    print(f"done after {count} jobs", flush=True)
    jobs.close()
    results.close()


main()
