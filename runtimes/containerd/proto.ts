/**
 * The part of containerd's gRPC API that dbg uses, as descriptors in protobufjs's JSON shape:
 * only the services, messages and fields dbg reads or writes, with containerd's field numbers
 * (from containerd's `api/` protos; fields were only ever appended, so 1.6 and later agree).
 * A small codec (codec.ts) encodes and decodes them: protobufjs itself took some 30 ms to load,
 * a seventh of a whole `dbg containerd -- true`.
 *
 * @module
 */

import { type Codec, compile, type Namespace } from "./codec.ts";

const str = (id: number) => ({ type: "string", id });
const u32 = (id: number) => ({ type: "uint32", id });
const bool = (id: number) => ({ type: "bool", id });
const msg = (type: string, id: number) => ({ type, id });
const list = (type: string, id: number) => ({ rule: "repeated", type, id });
const labels = (id: number) => ({ keyType: "string", type: "string", id });
const empty = { fields: {} };

/** The descriptor tree (package → messages and services). */
const DESCRIPTOR = {
  nested: {
    google: {
      nested: {
        protobuf: {
          nested: {
            Empty: empty,
            Any: { fields: { type_url: str(1), value: { type: "bytes", id: 2 } } },
            Timestamp: {
              fields: { seconds: { type: "int64", id: 1 }, nanos: { type: "int32", id: 2 } },
            },
          },
        },
      },
    },
    containerd: {
      nested: {
        types: {
          nested: {
            Mount: {
              fields: { type: str(1), source: str(2), target: str(3), options: list("string", 4) },
            },
            Descriptor: {
              fields: {
                media_type: str(1),
                digest: str(2),
                size: { type: "int64", id: 3 },
                annotations: labels(5),
              },
            },
          },
        },
        v1: {
          nested: {
            types: {
              nested: {
                Status: {
                  values: { UNKNOWN: 0, CREATED: 1, RUNNING: 2, STOPPED: 3, PAUSED: 4, PAUSING: 5 },
                },
                Process: {
                  fields: {
                    container_id: str(1),
                    id: str(2),
                    pid: u32(3),
                    status: msg("Status", 4),
                    terminal: bool(8),
                    exit_status: u32(9),
                    exited_at: msg("google.protobuf.Timestamp", 10),
                  },
                },
              },
            },
          },
        },
        services: {
          nested: {
            version: {
              nested: {
                v1: {
                  nested: {
                    VersionResponse: { fields: { version: str(1), revision: str(2) } },
                    Version: {
                      methods: {
                        Version: {
                          requestType: "google.protobuf.Empty",
                          responseType: "VersionResponse",
                        },
                      },
                    },
                  },
                },
              },
            },
            images: {
              nested: {
                v1: {
                  nested: {
                    Image: {
                      fields: {
                        name: str(1),
                        labels: labels(2),
                        target: msg("containerd.types.Descriptor", 3),
                      },
                    },
                    CreateImageRequest: { fields: { image: msg("Image", 1) } },
                    CreateImageResponse: { fields: { image: msg("Image", 1) } },
                    DeleteImageRequest: { fields: { name: str(1), sync: bool(2) } },
                    GetImageRequest: { fields: { name: str(1) } },
                    GetImageResponse: { fields: { image: msg("Image", 1) } },
                    Images: {
                      methods: {
                        Get: { requestType: "GetImageRequest", responseType: "GetImageResponse" },
                        Create: {
                          requestType: "CreateImageRequest",
                          responseType: "CreateImageResponse",
                        },
                        Delete: {
                          requestType: "DeleteImageRequest",
                          responseType: "google.protobuf.Empty",
                        },
                      },
                    },
                  },
                },
              },
            },
            content: {
              nested: {
                v1: {
                  nested: {
                    ReadContentRequest: {
                      fields: {
                        digest: str(1),
                        offset: { type: "int64", id: 2 },
                        size: { type: "int64", id: 3 },
                      },
                    },
                    ReadContentResponse: {
                      fields: { offset: { type: "int64", id: 1 }, data: { type: "bytes", id: 2 } },
                    },
                    InfoRequest: { fields: { digest: str(1) } },
                    InfoResponse: { fields: { info: msg("Info", 1) } },
                    Info: { fields: { digest: str(1), size: { type: "int64", id: 2 } } },
                    WriteContentRequest: {
                      fields: {
                        action: u32(1),
                        ref: str(2),
                        total: { type: "int64", id: 3 },
                        expected: str(4),
                        offset: { type: "int64", id: 5 },
                        data: { type: "bytes", id: 6 },
                      },
                    },
                    WriteContentResponse: {
                      fields: { action: u32(1), offset: { type: "int64", id: 4 }, digest: str(6) },
                    },
                    Content: {
                      methods: {
                        Info: { requestType: "InfoRequest", responseType: "InfoResponse" },
                        Write: {
                          requestType: "WriteContentRequest",
                          responseType: "WriteContentResponse",
                          requestStream: true,
                          responseStream: true,
                        },
                        Read: {
                          requestType: "ReadContentRequest",
                          responseType: "ReadContentResponse",
                          responseStream: true,
                        },
                      },
                    },
                  },
                },
              },
            },
            snapshots: {
              nested: {
                v1: {
                  nested: {
                    PrepareSnapshotRequest: {
                      fields: {
                        snapshotter: str(1),
                        key: str(2),
                        parent: str(3),
                        labels: labels(4),
                      },
                    },
                    PrepareSnapshotResponse: {
                      fields: { mounts: list("containerd.types.Mount", 1) },
                    },
                    RemoveSnapshotRequest: { fields: { snapshotter: str(1), key: str(2) } },
                    CommitSnapshotRequest: {
                      fields: { snapshotter: str(1), name: str(2), key: str(3), labels: labels(4) },
                    },
                    StatSnapshotRequest: { fields: { snapshotter: str(1), key: str(2) } },
                    MountsRequest: { fields: { snapshotter: str(1), key: str(2) } },
                    MountsResponse: { fields: { mounts: list("containerd.types.Mount", 1) } },
                    StatSnapshotResponse: { fields: { info: msg("Info", 1) } },
                    Info: { fields: { name: str(1), parent: str(2) } },
                    Snapshots: {
                      methods: {
                        Prepare: {
                          requestType: "PrepareSnapshotRequest",
                          responseType: "PrepareSnapshotResponse",
                        },
                        Remove: {
                          requestType: "RemoveSnapshotRequest",
                          responseType: "google.protobuf.Empty",
                        },
                        Commit: {
                          requestType: "CommitSnapshotRequest",
                          responseType: "google.protobuf.Empty",
                        },
                        Stat: {
                          requestType: "StatSnapshotRequest",
                          responseType: "StatSnapshotResponse",
                        },
                        Mounts: { requestType: "MountsRequest", responseType: "MountsResponse" },
                      },
                    },
                  },
                },
              },
            },
            leases: {
              nested: {
                v1: {
                  nested: {
                    Lease: {
                      fields: {
                        id: str(1),
                        created_at: msg("google.protobuf.Timestamp", 2),
                        labels: labels(3),
                      },
                    },
                    CreateRequest: { fields: { id: str(1), labels: labels(3) } },
                    CreateResponse: { fields: { lease: msg("Lease", 1) } },
                    DeleteRequest: { fields: { id: str(1), sync: bool(2) } },
                    ListRequest: { fields: { filters: list("string", 1) } },
                    ListResponse: { fields: { leases: list("Lease", 1) } },
                    Leases: {
                      methods: {
                        List: { requestType: "ListRequest", responseType: "ListResponse" },
                        Create: { requestType: "CreateRequest", responseType: "CreateResponse" },
                        Delete: {
                          requestType: "DeleteRequest",
                          responseType: "google.protobuf.Empty",
                        },
                      },
                    },
                  },
                },
              },
            },
            diff: {
              nested: {
                v1: {
                  nested: {
                    ApplyRequest: {
                      fields: {
                        diff: msg("containerd.types.Descriptor", 1),
                        mounts: list("containerd.types.Mount", 2),
                      },
                    },
                    ApplyResponse: { fields: { applied: msg("containerd.types.Descriptor", 1) } },
                    Diff: {
                      methods: {
                        Apply: { requestType: "ApplyRequest", responseType: "ApplyResponse" },
                      },
                    },
                  },
                },
              },
            },
            namespaces: {
              nested: {
                v1: {
                  nested: {
                    Namespace: { fields: { name: str(1), labels: labels(2) } },
                    ListNamespacesRequest: { fields: { filter: str(1) } },
                    ListNamespacesResponse: { fields: { namespaces: list("Namespace", 1) } },
                    Namespaces: {
                      methods: {
                        List: {
                          requestType: "ListNamespacesRequest",
                          responseType: "ListNamespacesResponse",
                        },
                      },
                    },
                  },
                },
              },
            },
            containers: {
              nested: {
                v1: {
                  nested: {
                    Container: {
                      fields: {
                        id: str(1),
                        labels: labels(2),
                        image: str(3),
                        runtime: msg("Runtime", 4),
                        spec: msg("google.protobuf.Any", 5),
                        snapshotter: str(6),
                        snapshot_key: str(7),
                        created_at: msg("google.protobuf.Timestamp", 8),
                      },
                      nested: {
                        Runtime: {
                          fields: { name: str(1), options: msg("google.protobuf.Any", 2) },
                        },
                      },
                    },
                    CreateContainerRequest: { fields: { container: msg("Container", 1) } },
                    CreateContainerResponse: { fields: { container: msg("Container", 1) } },
                    DeleteContainerRequest: { fields: { id: str(1) } },
                    GetContainerRequest: { fields: { id: str(1) } },
                    GetContainerResponse: { fields: { container: msg("Container", 1) } },
                    ListContainersRequest: { fields: { filters: list("string", 1) } },
                    ListContainersResponse: { fields: { containers: list("Container", 1) } },
                    Containers: {
                      methods: {
                        Get: {
                          requestType: "GetContainerRequest",
                          responseType: "GetContainerResponse",
                        },
                        List: {
                          requestType: "ListContainersRequest",
                          responseType: "ListContainersResponse",
                        },
                        Create: {
                          requestType: "CreateContainerRequest",
                          responseType: "CreateContainerResponse",
                        },
                        Delete: {
                          requestType: "DeleteContainerRequest",
                          responseType: "google.protobuf.Empty",
                        },
                      },
                    },
                  },
                },
              },
            },
            tasks: {
              nested: {
                v1: {
                  nested: {
                    CreateTaskRequest: {
                      fields: {
                        container_id: str(1),
                        rootfs: list("containerd.types.Mount", 3),
                        stdin: str(4),
                        stdout: str(5),
                        stderr: str(6),
                        terminal: bool(7),
                      },
                    },
                    CreateTaskResponse: { fields: { container_id: str(1), pid: u32(2) } },
                    StartRequest: { fields: { container_id: str(1), exec_id: str(2) } },
                    ExecProcessRequest: {
                      fields: {
                        container_id: str(1),
                        stdin: str(2),
                        stdout: str(3),
                        stderr: str(4),
                        terminal: bool(5),
                        spec: msg("google.protobuf.Any", 6),
                        exec_id: str(7),
                      },
                    },
                    DeleteProcessRequest: { fields: { container_id: str(1), exec_id: str(2) } },
                    StartResponse: { fields: { pid: u32(1) } },
                    DeleteTaskRequest: { fields: { container_id: str(1) } },
                    DeleteResponse: { fields: { id: str(1), pid: u32(2), exit_status: u32(3) } },
                    KillRequest: {
                      fields: {
                        container_id: str(1),
                        exec_id: str(2),
                        signal: u32(3),
                        all: bool(4),
                      },
                    },
                    ResizePtyRequest: {
                      fields: {
                        container_id: str(1),
                        exec_id: str(2),
                        width: u32(3),
                        height: u32(4),
                      },
                    },
                    CloseIORequest: {
                      fields: { container_id: str(1), exec_id: str(2), stdin: bool(3) },
                    },
                    WaitRequest: { fields: { container_id: str(1), exec_id: str(2) } },
                    WaitResponse: { fields: { exit_status: u32(1) } },
                    GetRequest: { fields: { container_id: str(1), exec_id: str(2) } },
                    GetResponse: { fields: { process: msg("containerd.v1.types.Process", 1) } },
                    ListTasksRequest: { fields: { filter: str(1) } },
                    ListTasksResponse: {
                      fields: { tasks: list("containerd.v1.types.Process", 1) },
                    },
                    Tasks: {
                      methods: {
                        Get: { requestType: "GetRequest", responseType: "GetResponse" },
                        List: {
                          requestType: "ListTasksRequest",
                          responseType: "ListTasksResponse",
                        },
                        Create: {
                          requestType: "CreateTaskRequest",
                          responseType: "CreateTaskResponse",
                        },
                        Start: { requestType: "StartRequest", responseType: "StartResponse" },
                        Delete: {
                          requestType: "DeleteTaskRequest",
                          responseType: "DeleteResponse",
                        },
                        Kill: { requestType: "KillRequest", responseType: "google.protobuf.Empty" },
                        Exec: {
                          requestType: "ExecProcessRequest",
                          responseType: "google.protobuf.Empty",
                        },
                        DeleteProcess: {
                          requestType: "DeleteProcessRequest",
                          responseType: "DeleteResponse",
                        },
                        ResizePty: {
                          requestType: "ResizePtyRequest",
                          responseType: "google.protobuf.Empty",
                        },
                        CloseIO: {
                          requestType: "CloseIORequest",
                          responseType: "google.protobuf.Empty",
                        },
                        Wait: { requestType: "WaitRequest", responseType: "WaitResponse" },
                      },
                    },
                  },
                },
              },
            },
          },
        },
      },
    },
  },
};

const CODEC: Codec = compile(DESCRIPTOR as Namespace);

/** A method of the API: its gRPC path and how to write its request and read its response. */
export interface Method {
  path: string;
  encode(request: Record<string, unknown>): Uint8Array;
  decode(response: Uint8Array): Record<string, unknown>;
}

/** Look up `service` (e.g. `containerd.services.tasks.v1.Tasks`) and its `method`. */
export function method(service: string, name: string): Method {
  const m = CODEC.method(service, name);
  return {
    path: `/${service}/${name}`,
    encode: (request) => CODEC.encode(m.request, request),
    decode: (response) => CODEC.decode(m.response, response),
  };
}
