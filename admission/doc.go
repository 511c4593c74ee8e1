// Package admission is the logic of keyward serve's Kubernetes admission
// webhooks and its Gatekeeper external-data provider, apart from HTTP
// serving and from how an image is verified (a [Verifier], which package
// serve provides).
//
// The validating webhook ([Webhook.Validate]) reads an AdmissionReview
// v1 ([DecodeReview]), takes every image of the Pod or pod template it
// carries ([Extract]), verifies each distinct image once, and denies the
// request when any image does not verify, naming the image, its
// container and the failing check. Checks that failed with the trust
// policy action log come back as admission warnings. The mutating webhook
// ([Webhook.Mutate]) verifies the same way and pins each verified image
// that names no digest to the digest verified, with a JSON Patch (RFC
// 6902). The Gatekeeper provider ([Webhook.Provide]) answers
// externaldata.gatekeeper.sh ProviderRequests with one verdict object per
// key.
//
// Kinds judged: Pods (and the pods/ephemeralcontainers subresource) and
// the pod templates of Deployments, StatefulSets, DaemonSets, ReplicaSets,
// ReplicationControllers, Jobs and CronJobs, on CREATE and UPDATE; an
// UPDATE is judged by the images it adds or changes. Any
// other request (another kind, another subresource, DELETE, CONNECT) is
// allowed without a registry request: keyward's webhook configurations
// only send the kinds above, so such a request means a broader
// configuration someone else wrote, and keyward has nothing to verify in
// it.
//
// Nothing fails open: an image that cannot be parsed, verified, or
// verified in time is denied with the reason.
package admission
