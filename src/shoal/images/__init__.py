"""The node's image store: content-addressed blobs, layer snapshots, references, registry pulls and
image archives. ImageService (service.py) is the facade the Engine API routes and the executors use.

On disk, under the root given to ImageService (an OCI image layout plus the store's own parts):

    oci-layout, index.json     the OCI layout's marker and index (every named image, full name as ref.name)
    blobs/sha256/<hex>         manifests, indexes, configs and layer blobs, each verified on arrival
    images.json                images (by config digest) and the names pointing at them: the source of truth
    snapshots/<diff id>/fs     each layer unpacked once, overlayfs-ready, shared by every image that has it
    ingest/, snapshots.tmp/    writes in progress; emptied at start, nothing there is ever referenced
"""
