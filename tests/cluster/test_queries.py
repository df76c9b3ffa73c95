"""Queries in a cluster, through the Python SDK: a query sent to any node is answered by the
worker, which polls another node, with the workflow's current state.

A worker polls node 2 only; order workflows run (each activity takes a while), started through
node 1. Each workflow is queried through nodes 1, 2 and 3 in turn while it runs and after it
closed: every answer is a prefix of the final steps, answers read later never go backwards, and
the answer after the close equals the workflow's result.
"""

import asyncio
import uuid



from workload import Clients, expected_result, order

N_WORKFLOWS = 6


def test_queries_through_any_node_are_answered_by_a_worker_on_another(cluster, workers,
                                                                      task_queue, tmp_path):
    n1, n2, n3 = cluster.node(1), cluster.node(2), cluster.node(3)
    ids = [f"query-{uuid.uuid4().hex[:6]}-{i}" for i in range(N_WORKFLOWS)]

    async def main():
        ws = workers([n2], task_queue, str(tmp_path / "ledger.jsonl"), sleep_s=1.0)
        clients = Clients(cluster)
        c1 = await clients.get(n1)
        handles = [await c1.start_workflow("OrderWorkflow", order(wf_id), id=wf_id,
                                           task_queue=task_queue) for wf_id in ids]
        seen = {wf_id: [] for wf_id in ids}
        answered_while_running = 0
        via = [n1, n2, n3]
        for round_ in range(12):
            for i, wf_id in enumerate(ids):
                node = via[(round_ + i) % 3]
                client = await clients.get(node)
                handle = client.get_workflow_handle(wf_id)
                progress = await asyncio.wait_for(handle.query("progress"), 20)
                assert isinstance(progress, list), progress
                previous = seen[wf_id]
                assert progress[:len(previous)] == previous, \
                    f"{wf_id} via {node}: {progress} went back from {previous}"
                seen[wf_id] = progress
                if len(progress) < 4:
                    answered_while_running += 1
            await asyncio.sleep(0.3)
        results = [await asyncio.wait_for(h.result(), 120) for h in handles]
        for wf_id, result in zip(ids, results):
            assert result == expected_result(wf_id), result
            for node in via:
                client = await clients.get(node)
                final = await asyncio.wait_for(client.get_workflow_handle(wf_id).query("progress"), 20)
                assert final == result["steps"], f"{wf_id} via {node}: {final}"
        assert answered_while_running >= N_WORKFLOWS, \
            f"only {answered_while_running} answers came while workflows ran"
        print(f"\n{answered_while_running} queries answered while running, through all three nodes")
        for w in ws:
            assert w.alive(), f"worker died:\n{w.log_tail()}"

    asyncio.run(main())
