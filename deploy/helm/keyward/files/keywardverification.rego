package keywardverification

# Denies a Pod, or a workload's pod template, when keyward does not answer
# verified: true for every image of every container, init container and
# ephemeral container. keyward is Gatekeeper's external-data provider
# "keyward": one response item per key, its value a keyward verify result
# (verify-result.schema.json), or an error. The keys are the images,
# prefixed with [namespace] for namespaced objects (the key form of Ratify's
# multi-tenancy template), so that keyward verifies each against the policy
# set of the object's namespace.

pod_spec = input.review.object.spec {
	input.review.kind.kind == "Pod"
}

pod_spec = input.review.object.spec.jobTemplate.spec.template.spec {
	input.review.kind.kind == "CronJob"
}

pod_spec = input.review.object.spec.template.spec {
	not input.review.kind.kind == "Pod"
	not input.review.kind.kind == "CronJob"
}

container_lists := ["containers", "initContainers", "ephemeralContainers"]

image_set := {image | image := pod_spec[container_lists[_]][_].image}

images := [image | image_set[image]]

namespace = ns {
	ns := input.review.namespace
	ns != ""
}

key_for(image) = key {
	key := sprintf("[%s]%s", [namespace, image])
} else = image

image_of(key) = image {
	prefix := sprintf("[%s]", [namespace])
	startswith(key, prefix)
	image := substring(key, count(prefix), -1)
} else = key

keys := [key_for(image) | image := images[_]]

response := external_data({"provider": "keyward", "keys": keys})

# Gatekeeper could not call keyward at all (timeout, TLS, keyward down).
violation[{"msg": msg}] {
	count(images) > 0
	response.system_error != ""
	msg := sprintf("keyward: calling the external data provider failed: %s", [response.system_error])
}

# keyward answered an error for an image.
violation[{"msg": msg}] {
	item := response.errors[_]
	msg := sprintf("keyward: image %s: %s", [image_of(item[0]), item[1]])
}

# keyward answered, and the image is not verified (anything but
# verified: true denies).
violation[{"msg": msg}] {
	item := response.responses[_]
	not verified(item[1])
	msg := sprintf("keyward: image %s is not verified: %s", [image_of(item[0]), reason(item[1])])
}

verified(result) {
	result.verified == true
}

reason(result) = msg {
	msg := result.error.message
} else = "no verification result"

# An image keyward did not answer for at all is not verified either.
violation[{"msg": msg}] {
	count(images) > 0
	response.system_error == ""
	answered := {key | key := response.responses[_][0]} | {key | key := response.errors[_][0]}
	key := keys[_]
	not answered[key]
	msg := sprintf("keyward: no answer for image %s", [image_of(key)])
}
